// UploadFileToS3 against a real moto_server (started per test on a free loopback port, stopped
// by pid), sometimes behind a fault-injecting proxy. moto is required: without it every test
// here fails with a message saying so.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/egress/s3_client.h"
#include "core/egress/s3_upload.h"
#include "core/egress/test_support.h"

namespace clrdiag::egress {
namespace {

using testing::FaultProxy;
using testing::MotoServer;
using Action = FaultProxy::Action;

// moto enforces S3's 5 MiB minimum for every part but the last unless told otherwise.
constexpr uint64_t kMotoPartMin = 1024;
constexpr uint64_t kPart = 64 * 1024;

class TempFile {
 public:
  TempFile(const std::string& name, const std::string& content) {
    path_ = absl::StrCat(::testing::TempDir(), "/", name, "-", ::getpid());
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// One moto_server for the whole binary (it takes seconds to start); each test has a bucket of
// its own. The test that stops the server mid-upload starts a private one.
class S3MotoTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto moto = MotoServer::Start(kMotoPartMin);
    if (moto.ok()) {
      shared_moto_ = std::move(*moto).release();
    } else {
      start_error_ = new absl::Status(moto.status());
    }
  }
  static void TearDownTestSuite() {
    delete shared_moto_;
    shared_moto_ = nullptr;
  }

  void SetUp() override {
    if (start_error_ != nullptr) GTEST_FAIL() << *start_error_;
    moto_ = shared_moto_;
    secret_ = std::make_unique<TempFile>("s3-secret", "not-a-real-secret-8f3a\n");
    // "t-<test name>", lower case, as a valid bucket name.
    bucket_ = "t-";
    for (char ch : std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())) {
      bucket_.push_back(std::isalnum(static_cast<unsigned char>(ch))
                            ? static_cast<char>(std::tolower(static_cast<unsigned char>(ch)))
                            : '-');
    }
    bucket_.resize(std::min<size_t>(bucket_.size(), 60));
  }

  // A private server for a test that stops it.
  void UsePrivateServer() {
    auto moto = MotoServer::Start(kMotoPartMin);
    ASSERT_TRUE(moto.ok()) << moto.status();
    private_moto_ = std::move(*moto);
    moto_ = private_moto_.get();
  }

  S3Config ConfigFor(const std::string& endpoint, const std::string& bucket = "") {
    S3Config c;
    c.endpoint = endpoint;
    c.bucket = bucket.empty() ? bucket_ : bucket;
    c.region = "us-east-1";
    c.access_key_id = "test";
    c.secret_access_key_file = secret_->path();
    c.path_style = true;
    return c;
  }
  S3Config Config() { return ConfigFor(moto_->endpoint()); }

  S3UploadOptions MultipartOptions() {
    S3UploadOptions o;
    o.multipart_threshold = 2 * kPart;
    o.part_size = kPart;
    o.retry.initial_backoff = absl::Milliseconds(20);
    return o;
  }

  std::unique_ptr<S3Client> Client(const S3Config& c) {
    auto client = S3Client::Create(c, {});
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  void CreateBucket(const S3Config& c) {
    auto client = Client(c);
    ASSERT_NE(client, nullptr);
    absl::Status s = client->CreateBucket();
    ASSERT_TRUE(s.ok()) << s;
  }

  // Reads the object back over a fresh path-style client and compares it byte for byte.
  void ExpectObject(const S3Config& c, const std::string& key, const std::string& want) {
    S3Config direct = c;
    direct.endpoint = moto_->endpoint();
    direct.path_style = true;
    direct.resolve.clear();
    auto client = Client(direct);
    ASSERT_NE(client, nullptr);
    auto got = client->GetObject(key, want.size() + 1024);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), want.size());
    EXPECT_TRUE(*got == want) << "object content differs from the file";
  }

  void ExpectNoUploadsInProgress(const S3Config& c) {
    S3Config direct = c;
    direct.endpoint = moto_->endpoint();
    auto client = Client(direct);
    ASSERT_NE(client, nullptr);
    auto ids = client->ListMultipartUploads("");
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_TRUE(ids->empty()) << ids->size() << " multipart uploads left, first " << (*ids)[0];
  }

  static inline MotoServer* shared_moto_ = nullptr;
  static inline absl::Status* start_error_ = nullptr;
  MotoServer* moto_ = nullptr;
  std::unique_ptr<MotoServer> private_moto_;
  std::unique_ptr<TempFile> secret_;
  std::string bucket_;
};

TEST_F(S3MotoTest, SinglePutRoundTripsAndIsVerified) {
  S3Config c = Config();
  c.prefix = "ns/pod-1/";
  CreateBucket(c);
  const std::string content = RandomBytes(300 * 1024 + 7, 1);
  TempFile f("single.dmp", content);
  uint64_t last = 0;
  S3UploadOptions o;
  o.progress = [&](const S3UploadProgress& p) {
    EXPECT_GE(p.bytes_sent, last);
    EXPECT_EQ(p.total, content.size());
    last = p.bytes_sent;
  };
  auto r = UploadFileToS3(c, f.path(), "core_1234.dmp", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->multipart);
  EXPECT_TRUE(r->verified);
  EXPECT_EQ(r->key, "ns/pod-1/core_1234.dmp");
  EXPECT_EQ(r->size, content.size());
  EXPECT_EQ(r->etag.size(), 32u);
  EXPECT_EQ(r->retries, 0);
  EXPECT_EQ(r->url, absl::StrCat(moto_->endpoint(), "/", bucket_, "/ns/pod-1/core_1234.dmp"));
  EXPECT_EQ(last, content.size());
  ExpectObject(c, "ns/pod-1/core_1234.dmp", content);

  // An empty file is an empty object (ETag = MD5 of nothing).
  TempFile empty("empty.dmp", "");
  r = UploadFileToS3(c, empty.path(), "empty.dmp", {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->etag, "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_TRUE(r->verified);
  ExpectObject(c, "ns/pod-1/empty.dmp", "");
}

TEST_F(S3MotoTest, MultipartRoundTripsAndIsVerified) {
  S3Config c = Config();
  CreateBucket(c);
  const std::string content = RandomBytes(4 * kPart + 12345, 2);  // 5 parts, the last short
  TempFile f("multi.dmp", content);
  S3UploadOptions o = MultipartOptions();
  std::vector<int> parts_seen;
  uint64_t last = 0;
  o.progress = [&](const S3UploadProgress& p) {
    EXPECT_GE(p.bytes_sent, last);
    last = p.bytes_sent;
    if (parts_seen.empty() || parts_seen.back() != p.part) parts_seen.push_back(p.part);
  };
  auto r = UploadFileToS3(c, f.path(), "a key with spaces+plus.dmp", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->multipart);
  EXPECT_EQ(r->parts, 5);
  EXPECT_EQ(r->part_size, kPart);
  EXPECT_TRUE(absl::EndsWith(r->etag, "-5")) << r->etag;
  EXPECT_TRUE(r->verified);
  EXPECT_EQ(last, content.size());
  EXPECT_EQ(parts_seen, (std::vector<int>{1, 2, 3, 4, 5}));
  ExpectObject(c, "a key with spaces+plus.dmp", content);
  ExpectNoUploadsInProgress(c);
}

// moto serves virtual-hosted requests when the Host is <bucket>.<name with a dot>; the name
// "<bucket>.localhost" is pointed at 127.0.0.1 through S3Config::resolve (curl --resolve).
TEST_F(S3MotoTest, VirtualHostStyleSingleAndMultipart) {
  S3Config c = ConfigFor(absl::StrCat("http://localhost:", moto_->port()), "dumps-vhost");
  c.path_style = false;
  c.resolve = {absl::StrCat("dumps-vhost.localhost:", moto_->port(), ":127.0.0.1")};
  CreateBucket(c);  // PUT / with Host dumps-vhost.localhost:<port>
  const std::string small = RandomBytes(10000, 3);
  const std::string big = RandomBytes(3 * kPart + 1, 4);
  TempFile fs("vh-small.dmp", small);
  TempFile fb("vh-big.dmp", big);
  auto r1 = UploadFileToS3(c, fs.path(), "vh/small.dmp", MultipartOptions());
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(r1->url, absl::StrCat("http://dumps-vhost.localhost:", moto_->port(), "/vh/small.dmp"));
  auto r2 = UploadFileToS3(c, fb.path(), "vh/big.dmp", MultipartOptions());
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->parts, 4);
  // Read back path-style: the objects are in that bucket under those keys.
  ExpectObject(c, "vh/small.dmp", small);
  ExpectObject(c, "vh/big.dmp", big);
}

TEST_F(S3MotoTest, MissingBucketIsAClearErrorWithoutRetries) {
  S3Config c = Config();
  c.bucket = "no-such-bucket";
  TempFile f("x.dmp", "hello");
  const absl::Time start = absl::Now();
  auto r = UploadFileToS3(c, f.path(), "x.dmp", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  const std::string m(r.status().message());
  EXPECT_TRUE(absl::StrContains(m, "S3 PutObject s3://no-such-bucket/x.dmp")) << m;
  EXPECT_TRUE(absl::StrContains(m, "HTTP 404 NoSuchBucket")) << m;
  EXPECT_FALSE(absl::StrContains(m, "attempts")) << m;  // a 404 is not retried
  EXPECT_FALSE(absl::StrContains(m, "not-a-real-secret")) << m;
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));

  // Multipart: the first step names itself.
  TempFile big("big.dmp", RandomBytes(3 * kPart, 5));
  r = UploadFileToS3(c, big.path(), "big.dmp", MultipartOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "CreateMultipartUpload")) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "NoSuchBucket")) << r.status();
}

TEST_F(S3MotoTest, UnreachableServerIsRetriedThenAClearError) {
  auto port = testing::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  S3Config c = ConfigFor(absl::StrCat("http://127.0.0.1:", *port));
  TempFile f("x.dmp", "hello");
  S3UploadOptions o;
  o.retry.max_attempts = 3;
  o.retry.initial_backoff = absl::Milliseconds(100);
  const absl::Time start = absl::Now();
  auto r = UploadFileToS3(c, f.path(), "x.dmp", o);
  const absl::Duration took = absl::Now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  const std::string m(r.status().message());
  EXPECT_TRUE(absl::StrContains(m, absl::StrCat("S3 PutObject s3://", bucket_, "/x.dmp"))) << m;
  EXPECT_TRUE(absl::StrContains(m, absl::StrCat("127.0.0.1:", *port))) << m;
  EXPECT_TRUE(absl::StrContains(m, "after 3 attempts")) << m;
  // Backoffs of 100 ms then 200 ms between the three attempts.
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(5));
}

TEST_F(S3MotoTest, FailedAndDroppedPartRequestsAreRetried) {
  S3Config c = Config();
  CreateBucket(c);
  std::atomic<int> part_requests{0};
  auto proxy =
      FaultProxy::Start(moto_->port(), [&](const std::string& method, const std::string& target) {
        if (method == "PUT" && absl::StrContains(target, "partNumber=2")) {
          const int n = ++part_requests;
          if (n == 1) return Action::kFail500;
          if (n == 2) return Action::kDropConnection;
        }
        return Action::kForward;
      });
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  S3Config via = ConfigFor((*proxy)->endpoint());
  const std::string content = RandomBytes(3 * kPart + 99, 6);
  TempFile f("retry.dmp", content);
  auto r = UploadFileToS3(via, f.path(), "retry.dmp", MultipartOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->retries, 2);
  EXPECT_EQ(part_requests.load(), 3);
  EXPECT_TRUE(r->verified);
  ExpectObject(c, "retry.dmp", content);
}

// 429 (throttling) is retried; other 4xx such as 403 are not.
TEST_F(S3MotoTest, ThrottlingIsRetriedButAccessDeniedIsNot) {
  S3Config c = Config();
  CreateBucket(c);
  std::atomic<int> puts{0};
  std::atomic<bool> deny{false};
  auto proxy = FaultProxy::Start(moto_->port(), [&](const std::string& method, const std::string&) {
    if (method != "PUT") return Action::kForward;
    if (deny) return Action::kFail403;
    return ++puts == 1 ? Action::kFail429 : Action::kForward;
  });
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  S3Config via = ConfigFor((*proxy)->endpoint());
  const std::string content = RandomBytes(777, 16);
  TempFile f("throttle.dmp", content);
  S3UploadOptions o;
  o.retry.initial_backoff = absl::Milliseconds(20);
  auto r = UploadFileToS3(via, f.path(), "throttle.dmp", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->retries, 1);
  ExpectObject(c, "throttle.dmp", content);

  deny = true;
  const size_t before = (*proxy)->requests().size();
  r = UploadFileToS3(via, f.path(), "denied.dmp", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(
      absl::StrContains(r.status().message(), "HTTP 403 AccessDenied: injected by the test proxy"))
      << r.status();
  EXPECT_EQ((*proxy)->requests().size(), before + 1);  // one PUT, no retry
}

TEST_F(S3MotoTest, APartThatKeepsFailingAbortsTheUpload) {
  S3Config c = Config();
  CreateBucket(c);
  auto proxy =
      FaultProxy::Start(moto_->port(), [](const std::string& method, const std::string& target) {
        if (method == "PUT" && absl::StrContains(target, "partNumber=2")) return Action::kFail500;
        return Action::kForward;
      });
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  S3Config via = ConfigFor((*proxy)->endpoint());
  TempFile f("fail.dmp", RandomBytes(3 * kPart, 7));
  S3UploadOptions o = MultipartOptions();
  o.retry.max_attempts = 3;
  auto r = UploadFileToS3(via, f.path(), "fail.dmp", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  const std::string m(r.status().message());
  EXPECT_TRUE(absl::StrContains(m, absl::StrCat("S3 UploadPart 2/3 s3://", bucket_, "/fail.dmp")))
      << m;
  EXPECT_TRUE(absl::StrContains(m, "HTTP 500 InternalError: injected by the test proxy")) << m;
  EXPECT_TRUE(absl::StrContains(m, "after 3 attempts")) << m;
  EXPECT_TRUE(absl::StrContains(m, "multipart upload aborted")) << m;
  int aborts = 0;
  for (const std::string& req : (*proxy)->requests()) {
    if (absl::StartsWith(req, absl::StrCat("DELETE /", bucket_, "/fail.dmp?uploadId="))) ++aborts;
  }
  EXPECT_EQ(aborts, 1);
  ExpectNoUploadsInProgress(c);
}

TEST_F(S3MotoTest, CompleteAnswering200WithAnErrorIsRetriedOrFails) {
  S3Config c = Config();
  CreateBucket(c);
  std::atomic<int> completes{0};
  std::atomic<bool> always{false};
  auto proxy =
      FaultProxy::Start(moto_->port(), [&](const std::string& method, const std::string& target) {
        if (method == "POST" && absl::StrContains(target, "uploadId=") &&
            (++completes == 1 || always)) {
          return Action::kFail200Error;
        }
        return Action::kForward;
      });
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  S3Config via = ConfigFor((*proxy)->endpoint());
  const std::string content = RandomBytes(2 * kPart + 5, 8);
  TempFile f("complete.dmp", content);
  auto r = UploadFileToS3(via, f.path(), "complete.dmp", MultipartOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->retries, 1);
  ExpectObject(c, "complete.dmp", content);

  always = true;
  S3UploadOptions o = MultipartOptions();
  o.retry.max_attempts = 2;
  r = UploadFileToS3(via, f.path(), "complete2.dmp", o);
  ASSERT_FALSE(r.ok());
  const std::string m(r.status().message());
  EXPECT_TRUE(absl::StrContains(m, "CompleteMultipartUpload")) << m;
  EXPECT_TRUE(absl::StrContains(m, "HTTP 200 with an error: InternalError")) << m;
  EXPECT_TRUE(absl::StrContains(m, "multipart upload aborted")) << m;
  ExpectNoUploadsInProgress(c);
}

TEST_F(S3MotoTest, CorruptedPartIsDetected) {
  S3Config c = Config();
  CreateBucket(c);
  auto proxy =
      FaultProxy::Start(moto_->port(), [](const std::string& method, const std::string& target) {
        if (method == "PUT" && absl::StrContains(target, "partNumber=2"))
          return Action::kCorruptBody;
        return Action::kForward;
      });
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  S3Config via = ConfigFor((*proxy)->endpoint());
  TempFile f("corrupt.dmp", RandomBytes(3 * kPart, 9));
  auto r = UploadFileToS3(via, f.path(), "corrupt.dmp", MultipartOptions());
  ASSERT_FALSE(r.ok());
  const std::string m(r.status().message());
  EXPECT_TRUE(absl::StrContains(m, "UploadPart 2/3")) << m;
  // Either the store rejects the Content-MD5 (BadDigest) or the ETag check catches it.
  EXPECT_TRUE(absl::StrContains(m, "BadDigest") || absl::StrContains(m, "InvalidDigest") ||
              absl::StrContains(m, "is not the MD5 of the part sent"))
      << m;
  EXPECT_TRUE(absl::StrContains(m, "multipart upload aborted")) << m;
  ExpectNoUploadsInProgress(c);
}

// The ETag the store reports for the finished object is checked against the one computed
// while reading the file.
TEST_F(S3MotoTest, VerificationCatchesAnObjectThatDiffers) {
  S3Config c = Config();
  CreateBucket(c);
  auto proxy = FaultProxy::Start(moto_->port(), [](const std::string& method, const std::string&) {
    return method == "HEAD" ? Action::kTamperEtag : Action::kForward;
  });
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  S3Config via = ConfigFor((*proxy)->endpoint());
  TempFile small("verify-small.dmp", RandomBytes(1000, 12));
  TempFile big("verify-big.dmp", RandomBytes(2 * kPart + 1, 13));
  for (const TempFile* f : {&small, &big}) {
    auto r = UploadFileToS3(via, f->path(), "verify.dmp", MultipartOptions());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_TRUE(absl::StrContains(r.status().message(), "S3 verification of s3://")) << r.status();
    EXPECT_TRUE(absl::StrContains(r.status().message(), "the object's ETag is")) << r.status();
  }
  // Without the check the same upload succeeds.
  S3UploadOptions o = MultipartOptions();
  o.verify = false;
  auto r = UploadFileToS3(via, big.path(), "verify.dmp", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->verified);
}

// A server that accepts the request and then says nothing: the stall timeout ends the attempt,
// and the retry goes through.
TEST_F(S3MotoTest, AStalledRequestTimesOutAndIsRetried) {
  S3Config c = Config();
  CreateBucket(c);
  std::atomic<int> puts{0};
  auto proxy = FaultProxy::Start(moto_->port(), [&](const std::string& method, const std::string&) {
    return method == "PUT" && ++puts == 1 ? Action::kStall : Action::kForward;
  });
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  S3Config via = ConfigFor((*proxy)->endpoint());
  const std::string content = RandomBytes(5000, 14);
  TempFile f("stall.dmp", content);
  S3UploadOptions o;
  o.stall_timeout = absl::Seconds(1);
  o.retry.initial_backoff = absl::Milliseconds(20);
  const absl::Time start = absl::Now();
  auto r = UploadFileToS3(via, f.path(), "stall.dmp", o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->retries, 1);
  EXPECT_GE(absl::Now() - start, absl::Seconds(1));
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  ExpectObject(c, "stall.dmp", content);

  // Always stalled: DeadlineExceeded after the attempts.
  puts = -1000;
  o.retry.max_attempts = 2;
  auto proxy2 = FaultProxy::Start(moto_->port(), [](const std::string& method, const std::string&) {
    return method == "PUT" ? Action::kStall : Action::kForward;
  });
  ASSERT_TRUE(proxy2.ok()) << proxy2.status();
  r = UploadFileToS3(ConfigFor((*proxy2)->endpoint()), f.path(), "stall2.dmp", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "no byte moved for 1s (stall timeout)"))
      << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "after 2 attempts")) << r.status();
}

TEST_F(S3MotoTest, CancellationStopsAndAborts) {
  S3Config c = Config();
  CreateBucket(c);
  TempFile f("cancel.dmp", RandomBytes(5 * kPart, 10));
  CancellationToken token;
  S3UploadOptions o = MultipartOptions();
  o.cancel = &token;
  o.progress = [&](const S3UploadProgress& p) {
    if (p.part == 2) token.Cancel();
  };
  auto r = UploadFileToS3(c, f.path(), "cancel.dmp", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "multipart upload aborted")) << r.status();
  ExpectNoUploadsInProgress(c);
}

// https with a certificate the test makes (openssl CLI): verified against ca_file; without it
// the system's CAs reject it, clearly and without retries.
TEST_F(S3MotoTest, HttpsWithACaFile) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/s3-tls-", ::getpid());
  const std::string cert = dir + "/cert.pem";
  const std::string key = dir + "/key.pem";
  ASSERT_EQ(std::system(absl::StrCat("mkdir -p ", dir,
                                     " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
                                     "-subj /CN=localhost -addext "
                                     "subjectAltName=IP:127.0.0.1,DNS:localhost -keyout ",
                                     key, " -out ", cert, " >/dev/null 2>&1")
                            .c_str()),
            0);
  auto moto = MotoServer::Start(kMotoPartMin, cert, key);
  ASSERT_TRUE(moto.ok()) << moto.status();
  private_moto_ = std::move(*moto);
  moto_ = private_moto_.get();
  S3Config c = Config();
  ASSERT_TRUE(absl::StartsWith(c.endpoint, "https://")) << c.endpoint;
  c.ca_file = cert;
  CreateBucket(c);
  const std::string content = RandomBytes(3 * kPart + 3, 15);
  TempFile f("tls.dmp", content);
  auto r = UploadFileToS3(c, f.path(), "tls.dmp", MultipartOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->verified);
  auto client = Client(c);
  ASSERT_NE(client, nullptr);
  auto got = client->GetObject("tls.dmp", content.size());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == content);

  c.ca_file = "";
  r = UploadFileToS3(c, f.path(), "tls2.dmp", MultipartOptions());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "TLS verification")) << r.status();
  EXPECT_FALSE(absl::StrContains(r.status().message(), "attempts")) << r.status();
  std::system(absl::StrCat("rm -rf ", dir).c_str());
}

TEST_F(S3MotoTest, ServerStoppedMidUploadFailsClearlyAfterRetries) {
  UsePrivateServer();
  S3Config c = Config();
  CreateBucket(c);
  TempFile f("stop.dmp", RandomBytes(4 * kPart, 11));
  S3UploadOptions o = MultipartOptions();
  o.retry.max_attempts = 2;
  o.progress = [&](const S3UploadProgress& p) {
    if (p.part == 2 && p.bytes_sent >= p.total / 2) moto_->Stop();
  };
  auto r = UploadFileToS3(c, f.path(), "stop.dmp", o);
  ASSERT_FALSE(r.ok());
  const std::string m(r.status().message());
  EXPECT_TRUE(absl::StrContains(m, "UploadPart")) << m;
  EXPECT_TRUE(absl::StrContains(m, "after 2 attempts")) << m;
  // The abort could not reach the server either, and the message says what that leaves behind.
  EXPECT_TRUE(absl::StrContains(m, "abort of upload")) << m;
}

}  // namespace
}  // namespace clrdiag::egress
