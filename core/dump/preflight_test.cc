#include "core/dump/preflight.h"

#include <gtest/gtest.h>

namespace clrdiag::dump {
namespace {

procfs::MapEntry Map(uint64_t start, uint64_t size, const char* perms) {
  procfs::MapEntry m;
  m.start = start;
  m.end = start + size;
  m.perms = perms;
  return m;
}

TEST(PreflightTest, EstimatesFromTheMemoryMap) {
  std::vector<procfs::MapEntry> maps = {
      Map(0x1000, 100 << 20, "rw-p"),    // GC heap
      Map(0x9000000, 1 << 30, "---p"),   // GC reserve: never written
      Map(0x50000000, 8 << 20, "r-xp"),  // code
      Map(0x60000000, 2 << 20, "r--p"),
  };
  const uint64_t header = 1 << 20;
  EXPECT_EQ(EstimateDumpBytes(maps, DumpKind::kFull), (110ull << 20) + header);
  EXPECT_EQ(EstimateDumpBytes(maps, DumpKind::kHeap),
            (100ull << 20) + (100ull << 20) / 50 + header);
  EXPECT_EQ(EstimateDumpBytes(maps, DumpKind::kMini), 0u);
  EXPECT_EQ(EstimateDumpBytes(maps, DumpKind::kTriage), 0u);
}

TEST(PreflightTest, RefusesWhatDoesNotFitWithAdvice) {
  PreflightInput in;
  in.pid = 42;
  in.kind = DumpKind::kFull;
  in.estimate = 200 << 20;
  in.store_root = "/srv/store";
  in.store_free = 300 << 20;
  in.reserve = 64 << 20;
  EXPECT_TRUE(CheckPreflight(in).ok());
  in.reserve = 128 << 20;  // 300 - 128 < 200
  absl::Status st = CheckPreflight(in);
  ASSERT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  std::string msg(st.message());
  for (const char* part : {"a Full dump of process 42", "about 200 MiB", "/srv/store has 300 MiB",
                           "keeps 128 MiB of it in reserve", "--type Mini", "another store"}) {
    EXPECT_NE(msg.find(part), std::string::npos) << part << "\n" << msg;
  }
  in.store_free = 10 << 20;  // less than the reserve itself
  EXPECT_EQ(CheckPreflight(in).code(), absl::StatusCode::kResourceExhausted);

  // The target's temp directory, when it is another filesystem, must hold it too.
  in.store_free = 1ull << 40;
  in.temp_free = 50 << 20;
  in.temp_dir = "/tmp/";
  st = CheckPreflight(in);
  ASSERT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("temp directory /tmp/"), std::string::npos) << st;
  in.temp_free = 1ull << 40;
  EXPECT_TRUE(CheckPreflight(in).ok());
}

}  // namespace
}  // namespace clrdiag::dump
