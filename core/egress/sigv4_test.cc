// The signer against the worked examples of AWS's "Signature Calculations for the Authorization
// Header: Transferring Payload in a Single Chunk" page (AmazonS3/latest/API/
// sig-v4-header-based-auth.html): key AKIAIOSFODNN7EXAMPLE, 2013-05-24, us-east-1, bucket
// examplebucket. The canonical-request hashes, string to sign and signatures are AWS's.
#include "core/egress/sigv4.h"

#include <gtest/gtest.h>

#include "absl/time/time.h"

namespace clrdiag::egress {
namespace {

const SigV4Credentials kCreds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                              ""};
const char kHost[] = "examplebucket.s3.amazonaws.com";

absl::Time ExampleTime() { return absl::FromUnixSeconds(1369353600); }  // 20130524T000000Z

TEST(SigV4Test, GetObjectExample) {
  SigV4Request r;
  r.method = "GET";
  r.path = "/test.txt";
  r.headers = {{"Host", kHost}, {"Range", "bytes=0-9"}};
  r.payload_sha256 = kEmptyPayloadSha256;
  SigV4Result s = SignV4(r, kCreds, "us-east-1", ExampleTime());
  EXPECT_EQ(s.canonical_request,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
            "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4Test, PutObjectExample) {
  const std::string body = "Welcome to Amazon S3.";
  SigV4Request r;
  r.method = "PUT";
  r.path = "/test$file.text";  // '$' is encoded once: /test%24file.text
  r.headers = {{"Host", kHost},
               {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  r.payload_sha256 = HexSha256(body);
  EXPECT_EQ(r.payload_sha256, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  SigV4Result s = SignV4(r, kCreds, "us-east-1", ExampleTime());
  EXPECT_NE(s.canonical_request.find("PUT\n/test%24file.text\n\n"), std::string::npos);
  EXPECT_EQ(HexSha256(s.canonical_request),
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(s.signed_headers, "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class");
  EXPECT_EQ(s.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4Test, GetBucketLifecycleExampleValuelessQuery) {
  SigV4Request r;
  r.method = "GET";
  r.path = "/";
  r.query = {{"lifecycle", ""}};
  r.headers = {{"Host", kHost}};
  r.payload_sha256 = kEmptyPayloadSha256;
  SigV4Result s = SignV4(r, kCreds, "us-east-1", ExampleTime());
  EXPECT_NE(s.canonical_request.find("GET\n/\nlifecycle=\n"), std::string::npos);
  EXPECT_EQ(HexSha256(s.canonical_request),
            "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(s.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4Test, ListObjectsExampleQuerySorted) {
  SigV4Request r;
  r.method = "GET";
  r.path = "/";
  r.query = {{"prefix", "J"}, {"max-keys", "2"}};  // given unsorted on purpose
  r.headers = {{"Host", kHost}};
  r.payload_sha256 = kEmptyPayloadSha256;
  SigV4Result s = SignV4(r, kCreds, "us-east-1", ExampleTime());
  EXPECT_NE(s.canonical_request.find("\nmax-keys=2&prefix=J\n"), std::string::npos);
  EXPECT_EQ(HexSha256(s.canonical_request),
            "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
  EXPECT_EQ(s.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4Test, SessionTokenIsSentAndSigned) {
  SigV4Credentials creds = kCreds;
  creds.session_token = "FQoGZXIvYXdzEXAMPLE";
  SigV4Request r;
  r.method = "HEAD";
  r.path = "/k";
  r.headers = {{"Host", kHost}};
  r.payload_sha256 = kEmptyPayloadSha256;
  SigV4Result with = SignV4(r, creds, "us-east-1", ExampleTime());
  SigV4Result without = SignV4(r, kCreds, "us-east-1", ExampleTime());
  EXPECT_EQ(with.signed_headers, "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
  EXPECT_NE(with.canonical_request.find("x-amz-security-token:FQoGZXIvYXdzEXAMPLE\n"),
            std::string::npos);
  EXPECT_NE(with.signature, without.signature);
  bool sent = false;
  for (const auto& [k, v] : with.headers) sent |= (k == "x-amz-security-token");
  EXPECT_TRUE(sent);
  // The secret never appears in what is sent.
  for (const auto& [k, v] : with.headers) {
    EXPECT_EQ(v.find(kCreds.secret_access_key), std::string::npos) << k;
  }
}

TEST(SigV4Test, EncodingRules) {
  EXPECT_EQ(UriEncode("a b/c~d_e-f.g", true), "a%20b/c~d_e-f.g");
  EXPECT_EQ(UriEncode("a b/c", false), "a%20b%2Fc");
  EXPECT_EQ(UriEncode("+*=&?%\xc3\xa9", false), "%2B%2A%3D%26%3F%25%C3%A9");
  // No dot-segment normalization for S3.
  EXPECT_EQ(CanonicalUri("/b/../x/./y"), "/b/../x/./y");
  EXPECT_EQ(CanonicalQuery({{"uploadId", "a/b+c"}, {"partNumber", "10"}, {"uploads", ""}}),
            "partNumber=10&uploadId=a%2Fb%2Bc&uploads=");
  EXPECT_EQ(AmzDate(ExampleTime()), "20130524T000000Z");
}

TEST(SigV4Test, HeaderValuesAreTrimmedAndNamesLowerCased) {
  SigV4Request r;
  r.method = "GET";
  r.path = "/test.txt";
  r.headers = {{"HOST", kHost}, {"Range", "  bytes=0-9  "}};
  r.payload_sha256 = kEmptyPayloadSha256;
  // Same canonical form as the AWS example, hence the same signature.
  EXPECT_EQ(SignV4(r, kCreds, "us-east-1", ExampleTime()).signature,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

}  // namespace
}  // namespace clrdiag::egress
