// Passing an open file descriptor over a unix stream socket (SCM_RIGHTS), with one byte of
// payload so the message is never empty.
#pragma once

#include "core/base/unique_fd.h"

namespace clrdiag {

// Sends `fd` over `sock`; false (errno set) on failure.
bool SendFd(int sock, int fd);
// Receives one fd from `sock` (which must be readable); invalid if the message carried none.
UniqueFd ReceiveFd(int sock);

}  // namespace clrdiag
