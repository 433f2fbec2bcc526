// Config checking, addressing, XML and ETag helpers of the S3 client (no server needed).
#include "core/egress/s3_client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/egress/s3_upload.h"

namespace clrdiag::egress {
namespace {

class SecretFile {
 public:
  explicit SecretFile(const std::string& content) {
    path_ = absl::StrCat(::testing::TempDir(), "/s3-secret-", ::getpid(), "-", counter_++);
    std::ofstream(path_) << content;
  }
  ~SecretFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

S3Config Config(const std::string& secret_path) {
  S3Config c;
  c.endpoint = "http://127.0.0.1:9000";
  c.bucket = "dumps";
  c.access_key_id = "test";
  c.secret_access_key_file = secret_path;
  return c;
}

TEST(S3ClientTest, PathStyleAndVirtualHostAddressing) {
  SecretFile secret("s3cr3t-value\n");
  S3Config c = Config(secret.path());
  auto path_style = S3Client::Create(c, {});
  ASSERT_TRUE(path_style.ok()) << path_style.status();
  EXPECT_EQ((*path_style)->HostHeader(), "127.0.0.1:9000");
  EXPECT_EQ((*path_style)->UrlFor("pod a/x$.dmp", "partNumber=1&uploadId=u"),
            "http://127.0.0.1:9000/dumps/pod%20a/x%24.dmp?partNumber=1&uploadId=u");
  c.path_style = false;
  c.endpoint = "https://s3.eu-west-1.amazonaws.com/";
  auto vhost = S3Client::Create(c, {});
  ASSERT_TRUE(vhost.ok()) << vhost.status();
  EXPECT_EQ((*vhost)->HostHeader(), "dumps.s3.eu-west-1.amazonaws.com");
  EXPECT_EQ((*vhost)->UrlFor("a/b.dmp", ""), "https://dumps.s3.eu-west-1.amazonaws.com/a/b.dmp");
}

TEST(S3ClientTest, ConfigErrorsAreClear) {
  SecretFile secret("abc");
  S3Config c = Config(secret.path());
  c.endpoint = "127.0.0.1:9000";
  EXPECT_NE(S3Client::Create(c, {}).status().message().find("must start with http://"),
            std::string::npos);
  c.endpoint = "http://127.0.0.1:9000/some/path";
  EXPECT_NE(S3Client::Create(c, {}).status().message().find("no path"), std::string::npos);
  c = Config(secret.path());
  c.bucket = "";
  EXPECT_EQ(S3Client::Create(c, {}).status().code(), absl::StatusCode::kInvalidArgument);
  c = Config(secret.path());
  c.bucket = "Under_Score";
  c.path_style = false;
  EXPECT_NE(S3Client::Create(c, {}).status().message().find("use path_style: true"),
            std::string::npos);
  c = Config(secret.path());
  c.access_key_id = "";
  EXPECT_NE(S3Client::Create(c, {}).status().message().find("access_key_id"), std::string::npos);
}

TEST(S3ClientTest, ValidateWithoutTheSecretFile) {
  S3Config c = Config("/nonexistent/secret");  // not read by ValidateS3Config
  EXPECT_TRUE(ValidateS3Config(c).ok());
  c.endpoint = "ftp://x";
  EXPECT_NE(ValidateS3Config(c).message().find("endpoint"), std::string::npos);
  c = Config("");
  EXPECT_NE(ValidateS3Config(c).message().find("secret_access_key_file"), std::string::npos);
}

TEST(S3ClientTest, SecretFileProblemsNameTheFileNotTheSecret) {
  S3Config c = Config("/nonexistent/clrdiag-s3-secret");
  absl::Status s = S3Client::Create(c, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(s.message().find("/nonexistent/clrdiag-s3-secret"), std::string::npos) << s;
  SecretFile empty("  \n");
  c = Config(empty.path());
  s = S3Client::Create(c, {}).status();
  EXPECT_NE(s.message().find("is empty"), std::string::npos) << s;
  SecretFile huge(std::string(5000, 'x'));
  c = Config(huge.path());
  s = S3Client::Create(c, {}).status();
  EXPECT_NE(s.message().find("longer than"), std::string::npos) << s;
  EXPECT_EQ(s.message().find("xxxx"), std::string::npos) << s;
}

TEST(S3ClientTest, UploadOfAMissingFileOrABadKeyFails) {
  SecretFile secret("abc");
  S3Config c = Config(secret.path());
  auto r = UploadFileToS3(c, "/nonexistent/dump.dmp", "dump.dmp", {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/dump.dmp"), std::string::npos);
  r = UploadFileToS3(c, "/proc/self/status", "", {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = UploadFileToS3(c, "/proc", "k", {});
  EXPECT_NE(r.status().message().find("not a regular file"), std::string::npos) << r.status();
  r = UploadFileToS3(c, "/proc/self/status", std::string(1100, 'k'), {});
  EXPECT_NE(r.status().message().find("1024"), std::string::npos) << r.status();
}

TEST(S3XmlTest, ErrorDocumentsAndElements) {
  const std::string err =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code>"
      "<Message>The specified bucket does not exist</Message><BucketName>x</BucketName></Error>";
  auto e = ParseS3Error(err);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, "NoSuchBucket");
  EXPECT_EQ(e->message, "The specified bucket does not exist");
  EXPECT_FALSE(ParseS3Error("<CompleteMultipartUploadResult/>").has_value());
  // S3's "200 OK" answer to Complete that turns out to be an error, after whitespace.
  EXPECT_EQ(ParseS3Error("\n  \n<Error><Code>InternalError</Code></Error>")->code, "InternalError");
  EXPECT_EQ(XmlElementText("<ETag>&quot;abc&quot;</ETag>", "ETag").value(), "\"abc\"");
  EXPECT_EQ(XmlElementText("<ETag>&#34;abc&#x22;</ETag>", "ETag").value(), "\"abc\"");
  EXPECT_FALSE(XmlElementText("<a>", "a").has_value());
  EXPECT_EQ(XmlEscape("\"a&b<c>'"), "&quot;a&amp;b&lt;c&gt;&apos;");
}

TEST(S3UploadTest, MultipartEtagIsMd5OfPartMd5s) {
  // Two parts "a" and "b": MD5("a") = 0cc175b9c0f1b6a831c399e269772661,
  // MD5("b") = 92eb5ffee6ae2fec3ad71c777531578f; MD5 of their 32 bytes, then "-2".
  auto unhex = [](const std::string& h) {
    std::string out;
    for (size_t i = 0; i < h.size(); i += 2) {
      out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
    }
    return out;
  };
  const std::string md5s =
      unhex("0cc175b9c0f1b6a831c399e269772661") + unhex("92eb5ffee6ae2fec3ad71c777531578f");
  // (computed independently with Python's hashlib)
  EXPECT_EQ(MultipartEtag(md5s, 2), "96e024ba2074fe77e8e965ba43a704be-2");
}

TEST(S3UploadTest, PartSizeIsRaisedToStayWithinTenThousandParts) {
  EXPECT_EQ(EffectivePartSize(100 * kMiB, 16 * kMiB), 16 * kMiB);
  // 200 GiB in 16 MiB parts would be 12,800 parts: raised to ceil(size / 10000).
  const uint64_t big = 200ull << 30;
  const uint64_t part = EffectivePartSize(big, 16 * kMiB);
  EXPECT_EQ(part, (big + 9999) / 10000);
  EXPECT_LE((big + part - 1) / part, kMaxMultipartParts);
  EXPECT_EQ(EffectivePartSize(10, 0), 1u);
}

}  // namespace
}  // namespace clrdiag::egress
