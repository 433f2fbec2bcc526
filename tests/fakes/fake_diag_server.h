// A scripted stand-in for a .NET runtime's diagnostics IPC server, for tests.
//
// It listens on a unix socket (paths longer than sun_path work, like the client) and serves
// connections one at a time on a background thread: it reads one request (header + payload),
// records it, and answers according to the behaviour scripted for that (command set, id).
// Unscripted commands get Error UNKNOWN_COMMAND, as a real runtime answers unknown commands.
// Reply headers are written by hand, not with the codec under test.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/base/unique_fd.h"

namespace clrdiag::testing {

// What the server does with one request.
struct Behavior {
  enum class Kind {
    kOk,               // OK (0xFF/0x00) with `payload`
    kError,            // Error (0xFF/0xFF) with `hresult` and, if set, the v3 `message` string
    kCloseNoReply,     // close without writing anything
    kCloseMidReply,    // write half of an OK reply's header, then close
    kMalformedHeader,  // a 20-byte header with a wrong magic
    kOversizedSize,    // a header claiming 65535 bytes, a few payload bytes, then close
    kHang,             // never reply; the connection stays open until the server stops
    kRaw,              // write `payload` verbatim, then close
  };
  Kind kind = Kind::kOk;
  std::vector<uint8_t> payload;
  uint32_t hresult = 0;
  std::optional<std::string> message;
  // Runs on the request before the answer is written (e.g. to plant files a real runtime's
  // createdump would write).
  std::function<void(const struct RecordedRequest&)> before_reply;

  static Behavior Ok(std::vector<uint8_t> payload);
  // OK with the int32 hresult 0 most commands (dump, resume, ...) answer.
  static Behavior OkHresult();
  static Behavior Error(uint32_t hresult);
  static Behavior ErrorWithMessage(uint32_t hresult, std::string message);
  static Behavior UnknownCommand();
  static Behavior CloseNoReply() { return Of(Kind::kCloseNoReply); }
  static Behavior CloseMidReply() { return Of(Kind::kCloseMidReply); }
  static Behavior MalformedHeader() { return Of(Kind::kMalformedHeader); }
  static Behavior OversizedSize() { return Of(Kind::kOversizedSize); }
  static Behavior Hang() { return Of(Kind::kHang); }
  static Behavior Raw(std::vector<uint8_t> bytes);

 private:
  static Behavior Of(Kind kind) {
    Behavior b;
    b.kind = kind;
    return b;
  }
};

// One request as received.
struct RecordedRequest {
  uint8_t command_set = 0;
  uint8_t command_id = 0;
  std::vector<uint8_t> payload;
};

class FakeDiagServer {
 public:
  // Scripted answers keyed by (command set, command id).
  using Script = std::map<std::pair<uint8_t, uint8_t>, Behavior>;

  // Binds and listens on `socket_path` (which must not exist) and starts serving with
  // `script` already in place, so no client can see an unscripted server.
  static absl::StatusOr<std::unique_ptr<FakeDiagServer>> Start(std::string socket_path,
                                                               Script script = {});
  // Stops the thread, closes every connection and removes the socket file.
  ~FakeDiagServer();
  FakeDiagServer(const FakeDiagServer&) = delete;
  FakeDiagServer& operator=(const FakeDiagServer&) = delete;

  // Scripts the answer to a command; it applies to every later request for it.
  void Set(uint8_t command_set, uint8_t command_id, Behavior behavior);

  // Requests received so far, in arrival order; each came on its own connection.
  std::vector<RecordedRequest> requests() const;
  // Connections accepted so far (including ones that never sent a whole request).
  int connections() const;
  const std::string& path() const { return path_; }

 private:
  FakeDiagServer(std::string path, UniqueFd listen_fd, UniqueFd wake_read, UniqueFd wake_write);
  void Run();
  // Reads one request; false if the peer went away or the server is stopping.
  bool ReadRequest(int fd, RecordedRequest& out);
  // Waits for `fd` to become readable; false if the server is stopping.
  bool WaitReadable(int fd);
  void Answer(UniqueFd conn, const Behavior& behavior);

  const std::string path_;
  UniqueFd listen_fd_;
  UniqueFd wake_read_;  // becomes readable when the server stops
  UniqueFd wake_write_;
  std::vector<UniqueFd> hung_;  // connections held open by kHang (server thread only)

  mutable std::mutex mu_;
  Script script_;
  std::vector<RecordedRequest> requests_;
  int connections_ = 0;

  std::thread thread_;
};

// Binds a listening unix socket at `path`, going through an O_PATH directory fd when the
// path does not fit in sun_path. Shared with the fake runtime binary.
absl::StatusOr<UniqueFd> ListenUnix(const std::string& path);

}  // namespace clrdiag::testing
