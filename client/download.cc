#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/client.h"
#include "core/base/fd_passing.h"
#include "core/base/fs.h"
#include "core/base/sha256.h"
#include "core/base/unique_fd.h"

namespace clrdiag::cli {
namespace {

// Hashes the first `len` bytes of an open file (the part kept from an earlier attempt).
bool HashPrefix(int fd, uint64_t len, Sha256* h) {
  std::vector<char> buf(1 << 20);
  uint64_t off = 0;
  while (off < len) {
    ssize_t n = ::pread(fd, buf.data(), std::min<uint64_t>(buf.size(), len - off), off);
    if (n <= 0) return false;
    h->Update(buf.data(), n);
    off += n;
  }
  return true;
}

}  // namespace

int DownloadToFile(Client& client, const std::string& id, const std::string& path,
                   ProgressLine* progress) {
  std::string partial = path + ".partial";
  UniqueFd fd(::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) {
    std::fprintf(stderr, "clrdiag: cannot write %s: %s\n", partial.c_str(), std::strerror(errno));
    return kExitFailed;
  }
  struct stat st;
  ::fstat(fd.get(), &st);
  uint64_t offset = static_cast<uint64_t>(st.st_size);
  Sha256 hash;
  if (offset > 0 && !HashPrefix(fd.get(), offset, &hash)) {
    std::fprintf(stderr, "clrdiag: cannot read %s to resume\n", partial.c_str());
    return kExitFailed;
  }
  ::lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET);

  grpc::ClientContext ctx;
  clrdiag::v1::DownloadDumpRequest req;
  req.set_id(id);
  req.set_offset(offset);
  auto reader = client.stub().DownloadDump(&ctx, req);
  clrdiag::v1::DumpChunk chunk;
  clrdiag::v1::DumpInfo info;
  uint64_t got = offset;
  auto t0 = std::chrono::steady_clock::now();
  while (reader->Read(&chunk)) {
    if (chunk.has_info()) info = chunk.info();
    if (chunk.offset() != got) {
      ctx.TryCancel();
      std::fprintf(stderr, "clrdiag: download of %s out of order at byte %llu\n", id.c_str(),
                   static_cast<unsigned long long>(got));
      return kExitFailed;
    }
    const std::string& d = chunk.data();
    if (!WriteFully(fd.get(), d.data(), d.size())) {
      int err = errno;
      ctx.TryCancel();
      if (progress) progress->Clear();
      std::fprintf(stderr, "clrdiag: writing %s failed after %llu bytes: %s%s\n", partial.c_str(),
                   static_cast<unsigned long long>(got), std::strerror(err),
                   err == ENOSPC ? " (free space and rerun the same command to resume)" : "");
      return err == ENOSPC ? kExitBusy : kExitFailed;
    }
    hash.Update(d.data(), d.size());
    got += d.size();
    if (progress && info.size_bytes()) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double rate = secs > 0 ? (got - offset) / secs : 0;
      progress->Update(absl::StrFormat("transferring %s / %s (%s/s)", HumanBytes(got),
                                       HumanBytes(info.size_bytes()),
                                       HumanBytes(static_cast<uint64_t>(rate))));
    }
  }
  grpc::Status status = reader->Finish();
  if (progress) progress->Clear();
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::OUT_OF_RANGE) {
      // The partial file is longer than the dump: it belongs to something else. Start over.
      ::unlink(partial.c_str());
    }
    int code = client.Fail(status);
    if (got > offset) {
      std::fprintf(stderr, "clrdiag: %llu bytes kept in %s; rerun the same command to resume\n",
                   static_cast<unsigned long long>(got), partial.c_str());
    }
    return code;
  }
  if (got != info.size_bytes()) {
    std::fprintf(stderr, "clrdiag: download of %s ended at %llu of %llu bytes; rerun to resume\n",
                 id.c_str(), static_cast<unsigned long long>(got),
                 static_cast<unsigned long long>(info.size_bytes()));
    return kExitFailed;
  }
  std::string digest = hash.HexDigest();
  if (digest != info.sha256()) {
    ::unlink(partial.c_str());
    std::fprintf(stderr,
                 "clrdiag: checksum mismatch for %s: got sha256 %s, the catalog says %s; the "
                 "partial file was removed, download again\n",
                 id.c_str(), digest.c_str(), info.sha256().c_str());
    return kExitFailed;
  }
  if (::rename(partial.c_str(), path.c_str()) != 0) {
    std::fprintf(stderr, "clrdiag: cannot finish %s: %s\n", path.c_str(), std::strerror(errno));
    return kExitFailed;
  }
  return kExitOk;
}

struct OutputFile::Hash {
  Sha256 sha;
};

std::unique_ptr<OutputFile> OutputFile::Create(const std::string& path) {
  auto f = std::unique_ptr<OutputFile>(new OutputFile());
  f->path_ = path;
  f->hash_ = std::make_unique<Hash>();
  std::string partial = path + ".partial";
  f->fd_ = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (f->fd_ < 0) {
    std::fprintf(stderr, "clrdiag: cannot write %s: %s\n", partial.c_str(), std::strerror(errno));
    return nullptr;
  }
  return f;
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink((path_ + ".partial").c_str());
}

bool OutputFile::Append(uint64_t offset, const std::string& data) {
  if (failed_) return false;
  if (offset != size_) {
    std::fprintf(stderr, "\nclrdiag: dump data out of order at byte %llu\n",
                 static_cast<unsigned long long>(size_));
    failed_ = true;
    return false;
  }
  if (!WriteFully(fd_, data.data(), data.size())) {
    int err = errno;
    std::fprintf(stderr, "\nclrdiag: writing %s.partial failed after %llu bytes: %s\n",
                 path_.c_str(), static_cast<unsigned long long>(size_), std::strerror(err));
    failed_ = true;
    return false;
  }
  hash_->sha.Update(data.data(), data.size());
  size_ += data.size();
  return true;
}

int OutputFile::Commit(uint64_t expected_size, const std::string& expected_sha256) {
  std::string partial = path_ + ".partial";
  if (size_ != expected_size) {
    std::fprintf(stderr,
                 "clrdiag: got %llu of %llu bytes of the dump; it is in the catalog, "
                 "fetch it with `clrdiag download`\n",
                 static_cast<unsigned long long>(size_),
                 static_cast<unsigned long long>(expected_size));
    return kExitFailed;
  }
  std::string digest = hash_->sha.HexDigest();
  if (digest != expected_sha256) {
    std::fprintf(stderr,
                 "clrdiag: checksum mismatch for %s (sha256 %s, expected %s); it is in "
                 "the catalog, fetch it with `clrdiag download`\n",
                 path_.c_str(), digest.c_str(), expected_sha256.c_str());
    return kExitFailed;
  }
  ::close(fd_);
  fd_ = -1;
  if (::rename(partial.c_str(), path_.c_str()) != 0) {
    std::fprintf(stderr, "clrdiag: cannot finish %s: %s\n", path_.c_str(), std::strerror(errno));
    return kExitFailed;
  }
  committed_ = true;
  return kExitOk;
}

int OutputFile::CommitWrittenByDaemon(uint64_t expected_size) {
  struct stat st;
  if (::fstat(fd_, &st) != 0 || static_cast<uint64_t>(st.st_size) != expected_size) {
    std::fprintf(stderr,
                 "clrdiag: %s.partial holds %lld of %llu bytes (is its disk full?); the dump is "
                 "in the catalog, fetch it with `clrdiag download`\n",
                 path_.c_str(), static_cast<long long>(st.st_size),
                 static_cast<unsigned long long>(expected_size));
    return kExitFailed;
  }
  ::close(fd_);
  fd_ = -1;
  if (::rename((path_ + ".partial").c_str(), path_.c_str()) != 0) {
    std::fprintf(stderr, "clrdiag: cannot finish %s: %s\n", path_.c_str(), std::strerror(errno));
    return kExitFailed;
  }
  committed_ = true;
  return kExitOk;
}

std::string SendOutputFd(const std::string& server_target, int fd) {
  if (server_target.rfind("unix:", 0) != 0) return "";
  std::string path = server_target.substr(5) + ".fds";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return "";
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s || ::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return "";
  if (!SendFd(s.get(), fd)) return "";
  timeval tv{5, 0};
  ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string token;
  char buf[64];
  for (;;) {
    ssize_t n = ::recv(s.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    token.append(buf, static_cast<size_t>(n));
    if (token.find('\n') != std::string::npos) break;
  }
  size_t nl = token.find('\n');
  return nl == std::string::npos ? "" : token.substr(0, nl);
}

}  // namespace clrdiag::cli
