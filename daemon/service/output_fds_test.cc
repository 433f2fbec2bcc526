#include "daemon/service/output_fds.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "core/base/fd_passing.h"

namespace clrdiag::service {
namespace {

// Sends `fd` over one end of a socketpair as the client does; the registry serves the other.
std::string HandOver(OutputFdRegistry& reg, int fd, uid_t uid) {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  EXPECT_TRUE(SendFd(sv[0], fd));
  reg.Serve(UniqueFd(sv[1]), PeerCred{0, uid, 0});
  char buf[64] = {};
  ssize_t n = ::recv(sv[0], buf, sizeof(buf) - 1, MSG_DONTWAIT);
  ::close(sv[0]);
  std::string s = n > 0 ? std::string(buf, n) : "";
  return s.empty() ? s : s.substr(0, s.find('\n'));
}

TEST(OutputFdRegistryTest, TokenIsBoundToTheSendersUidAndUsableOnce) {
  OutputFdRegistry reg;
  char path[] = "/tmp/clrdiag-outfd-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string token = HandOver(reg, fd, 1000);
  ::close(fd);
  ASSERT_EQ(token.size(), 32u);
  EXPECT_EQ(reg.Take(token, 1001).status().code(), absl::StatusCode::kNotFound);  // other user
  auto got = reg.Take(token, 1000);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(::write(got->get(), "ok", 2), 2);  // it is the client's writable file
  EXPECT_FALSE(reg.Take(token, 1000).ok());    // used up
  EXPECT_FALSE(reg.Take("0123456789abcdef0123456789abcdef", 1000).ok());
  ::unlink(path);
}

TEST(OutputFdRegistryTest, OnlyWritableRegularFilesAreAccepted) {
  OutputFdRegistry reg;
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_EQ(HandOver(reg, p[1], 0), "");  // a pipe
  ::close(p[0]);
  ::close(p[1]);
  int ro = ::open("/etc/hostname", O_RDONLY);
  ASSERT_GE(ro, 0);
  EXPECT_EQ(HandOver(reg, ro, 0), "");  // read-only
  ::close(ro);
}

TEST(BlockWriterTest, WritesBlocksAtTheirOffsets) {
  char path[] = "/tmp/clrdiag-blockw-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  {
    BlockWriter w(UniqueFd(::dup(fd)));
    for (int i = 0; i < 20; ++i) {
      std::string block(1000, static_cast<char>('a' + i));
      w.Write(static_cast<uint64_t>(i) * 1000, block.data(), block.size());
    }
    EXPECT_TRUE(w.Finish());
  }
  char buf[20000];
  ASSERT_EQ(::pread(fd, buf, sizeof(buf), 0), 20000);
  EXPECT_EQ(buf[0], 'a');
  EXPECT_EQ(buf[19999], 't');
  ::close(fd);
  ::unlink(path);
}

}  // namespace
}  // namespace clrdiag::service
