#include "core/base/egress_prefix.h"

#include "gtest/gtest.h"

namespace clrdiag {
namespace {

EgressPrefixValues ShopValues() {
  EgressPrefixValues v;
  v.pod = "shop-7d9c6b5f4-x2x7q";
  v.namespace_ = "shop";
  v.container = "fcb2ec7dc81f1d02ee143c0883107d0e8cf107097dbad861b55793d252687180";
  v.name = "Shop";
  v.pid = 4242;
  v.type = "heap";
  v.time = absl::FromCivil(absl::CivilSecond(2026, 11, 27, 12, 34, 56), absl::UTCTimeZone());
  return v;
}

TEST(EgressPrefixTest, ExpandsEveryPlaceholder) {
  absl::StatusOr<std::string> s =
      ExpandEgressPrefix("{namespace}/{pod}/{container}/{name}-{pid}-{type}-{time}/", ShopValues());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s,
            "shop/shop-7d9c6b5f4-x2x7q/"
            "fcb2ec7dc81f1d02ee143c0883107d0e8cf107097dbad861b55793d252687180/"
            "Shop-4242-heap-20261127T123456Z/");
}

TEST(EgressPrefixTest, LiteralTextAndEscapedBraces) {
  EXPECT_EQ(*ExpandEgressPrefix("dumps/", ShopValues()), "dumps/");
  EXPECT_EQ(*ExpandEgressPrefix("", ShopValues()), "");
  EXPECT_EQ(*ExpandEgressPrefix("{{pod}}/{pod}", ShopValues()), "{pod}/shop-7d9c6b5f4-x2x7q");
  EXPECT_EQ(*ExpandEgressPrefix("{pod}{pid}", ShopValues()), "shop-7d9c6b5f4-x2x7q4242");
}

TEST(EgressPrefixTest, ValuesNeverAddOrClimbPathLevels) {
  EgressPrefixValues v = ShopValues();
  v.pod = "";           // not in a pod
  v.namespace_ = "..";  // cannot come from Kubernetes, but never trusted
  v.name = "../etc/x y";
  v.container = ".";
  EXPECT_EQ(*ExpandEgressPrefix("{namespace}/{pod}/{container}/{name}", v), "_/_/_/.._etc_x_y");
}

TEST(EgressPrefixTest, ErrorsNameTheProblem) {
  for (const char* bad : {"{podname}/", "{pod", "pod}", "{}", "{pod}/{Pod}"}) {
    SCOPED_TRACE(bad);
    absl::Status st = ValidateEgressPrefix(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
    EXPECT_NE(st.message().find(bad), std::string_view::npos) << st;
    EXPECT_FALSE(ExpandEgressPrefix(bad, ShopValues()).ok());
  }
  absl::Status st = ValidateEgressPrefix("x/{podname}/");
  EXPECT_NE(st.message().find("unknown placeholder {podname} at 2"), std::string_view::npos) << st;
  EXPECT_NE(st.message().find("{namespace}"), std::string_view::npos) << st;
  EXPECT_TRUE(ValidateEgressPrefix("{pod}/{name}/{{x}}").ok());
}

}  // namespace
}  // namespace clrdiag
