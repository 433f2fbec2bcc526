// `clrdiag analyze --json`: each command's JSON form, one document per line, and agreement
// with the text form of the same command on the same dump (the text form is what the
// conformance tests hold against dotnet-dump).
#include <regex>
#include <sstream>

#include "tests/integration/util.h"

namespace clrdiag::testing {
namespace {

using Json = nlohmann::json;

class AnalyzeJsonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new Daemon();
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
    app_ = StartFixture("HeapApp", {"2000"}).release();
    ASSERT_TRUE(app_);
    RunResult r =
        daemon_->Client({"collect", "-p", std::to_string(app_->pid()), "--type", "Heap", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    id_ = ParseJson(r.out)["id"];
  }
  static void TearDownTestSuite() {
    delete app_;
    delete daemon_;
  }

  // Runs the commands in one session with --json; returns one parsed document per line.
  static std::vector<Json> RunJson(const std::vector<std::string>& commands, int expect_rc = 0) {
    std::vector<std::string> argv = {"analyze", id_, "--json"};
    for (const auto& c : commands) {
      argv.push_back("-c");
      argv.push_back(c);
    }
    RunResult r = daemon_->Client(argv);
    EXPECT_EQ(r.exit_code, expect_rc) << r.err;
    std::vector<Json> docs;
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
      Json j = Json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << "not a JSON document: " << line.substr(0, 300);
      docs.push_back(j);
    }
    return docs;
  }
  static std::string RunText(const std::vector<std::string>& commands) {
    std::vector<std::string> argv = {"analyze", id_};
    for (const auto& c : commands) {
      argv.push_back("-c");
      argv.push_back(c);
    }
    RunResult r = daemon_->Client(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  static bool IsHex(const Json& v) {
    return v.is_string() && std::regex_match(v.get<std::string>(), std::regex("0x[0-9a-f]+"));
  }

  static Daemon* daemon_;
  static Process* app_;
  static std::string id_;
};
Daemon* AnalyzeJsonTest::daemon_ = nullptr;
Process* AnalyzeJsonTest::app_ = nullptr;
std::string AnalyzeJsonTest::id_;

TEST_F(AnalyzeJsonTest, EveryCommandPrintsOneDocumentNamingItsCommand) {
  const std::vector<std::string> commands = {
      "help",           "help dumpheap", "eeversion", "clrthreads",
      "dumpheap -stat", "clrmodules",    "lm",        "dumpdomain",
      "runtimes",       "setclrpath",    "exit"};
  std::vector<Json> docs = RunJson(commands);
  ASSERT_EQ(docs.size(), commands.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    EXPECT_EQ(docs[i]["command"], commands[i]);
    EXPECT_TRUE(docs[i].contains("result")) << docs[i].dump();
    EXPECT_FALSE(docs[i].contains("error")) << docs[i].dump();
  }
  // Nothing but the documents on stdout: the "Loading core dump" line goes to stderr.
  EXPECT_EQ(docs[0]["result"]["commands"].size() > 10, true);
  EXPECT_EQ(docs[1]["result"]["names"][0], "dumpheap");
  const Json& ee = docs[2]["result"];
  EXPECT_TRUE(
      std::regex_match(ee["version"].get<std::string>(), std::regex(R"(\d+\.\d+\.\d+\.\d+)")));
  EXPECT_EQ(ee["gc_mode"], "workstation");
  const Json& rt = docs[8]["result"]["runtimes"][0];
  EXPECT_TRUE(IsHex(rt["base"]));
  EXPECT_TRUE(rt["size"].is_number_unsigned());
  EXPECT_EQ(rt["build_id"].get<std::string>().size(), 40u);
}

TEST_F(AnalyzeJsonTest, ErrorsAreDocumentsTooAndTheSessionGoesOn) {
  std::vector<Json> docs =
      RunJson({"bogus", "dumpheap -mt zz", "dumpobj 0x10", "eeversion", "exit"}, 1);
  ASSERT_EQ(docs.size(), 5u);
  EXPECT_EQ(docs[0]["command"], "bogus");
  EXPECT_TRUE(docs[0]["error"].get<std::string>().find("Unrecognized") != std::string::npos);
  EXPECT_FALSE(docs[0].contains("result"));
  EXPECT_TRUE(docs[1]["error"].get<std::string>().find("Usage") != std::string::npos);
  EXPECT_TRUE(docs[2]["error"].get<std::string>().find("not a valid object") != std::string::npos);
  EXPECT_TRUE(docs[3].contains("result"));
}

TEST_F(AnalyzeJsonTest, DumpHeapAgreesWithItsTextForm) {
  std::vector<Json> docs = RunJson({"dumpheap -stat", "dumpheap -type Fixture.Customer", "exit"});
  ASSERT_EQ(docs.size(), 3u);
  const Json& stat = docs[0]["result"];
  std::string text = RunText({"dumpheap -stat", "exit"});
  // Each statistics row of the text appears in the JSON with the same numbers.
  std::regex row(R"(\n([0-9a-f]+) +([0-9,]+) +([0-9,]+) (.+))");
  auto plain = [](std::string s) {
    s.erase(std::remove(s.begin(), s.end(), ','), s.end());
    return std::stoull(s);
  };
  size_t rows = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), row), end; it != end; ++it) {
    ++rows;
    bool found = false;
    for (const Json& r : stat["statistics"]) {
      if (r["mt"] == "0x" + (*it)[1].str()) {
        found = true;
        EXPECT_EQ(r["count"].get<uint64_t>(), plain((*it)[2]));
        EXPECT_EQ(r["total_size"].get<uint64_t>(), plain((*it)[3]));
        EXPECT_EQ(r["type"], (*it)[4].str());
      }
    }
    EXPECT_TRUE(found) << (*it)[0];
  }
  EXPECT_EQ(rows, stat["statistics"].size());
  std::smatch total;
  ASSERT_TRUE(
      std::regex_search(text, total, std::regex(R"(Total ([0-9,]+) objects, ([0-9,]+) bytes)")));
  EXPECT_EQ(stat["total_objects"].get<uint64_t>(), plain(total[1]));
  EXPECT_EQ(stat["total_size"].get<uint64_t>(), plain(total[2]));

  // The listing: every object of the statistics, numbers as numbers, addresses as hex.
  const Json& list = docs[1]["result"];
  uint64_t customers = 0;
  for (const Json& r : list["statistics"]) {
    if (r["type"] == "Fixture.Customer") customers = r["count"];
  }
  EXPECT_EQ(customers, 2000u);
  EXPECT_EQ(list["objects"].size(), list["total_objects"].get<uint64_t>());
  ASSERT_FALSE(list["objects"].empty());
  EXPECT_TRUE(IsHex(list["objects"][0]["address"]));
  EXPECT_TRUE(IsHex(list["objects"][0]["mt"]));
  EXPECT_TRUE(list["objects"][0]["size"].is_number_unsigned());
}

TEST_F(AnalyzeJsonTest, DumpObjDumpMtAndClrThreadsAgreeWithTheirTextForm) {
  std::vector<Json> docs = RunJson({"dumpheap -type Fixture.Customer", "exit"});
  std::string mt, obj;
  for (const Json& r : docs[0]["result"]["statistics"]) {
    if (r["type"] == "Fixture.Customer") mt = r["mt"];
  }
  for (const Json& o : docs[0]["result"]["objects"]) {
    if (o["mt"] == mt) obj = o["address"];
  }
  ASSERT_FALSE(obj.empty());
  docs = RunJson({"dumpobj " + obj, "dumpmt -md " + mt, "clrthreads", "exit"});
  ASSERT_EQ(docs.size(), 4u);
  std::string text = RunText({"dumpobj " + obj, "dumpmt -md " + mt, "clrthreads", "exit"});

  const Json& o = docs[0]["result"];
  EXPECT_EQ(o["type"], "Fixture.Customer");
  EXPECT_EQ(o["method_table"], mt);
  EXPECT_EQ(o["address"], obj);
  EXPECT_CONTAINS(text, "Size:        " + std::to_string(o["size"].get<uint64_t>()) + "(");
  ASSERT_FALSE(o["fields"].empty());
  for (const Json& f : o["fields"]) {
    // Each field's row in the text ends with its value and name.
    std::string name = f["name"];
    std::string value = f.value("value", "");
    EXPECT_TRUE(std::regex_search(text, std::regex(" " + value + " " + name + "\n")))
        << name << " = " << value;
    EXPECT_TRUE(f["offset"].is_number_unsigned());
  }

  const Json& m = docs[1]["result"];
  EXPECT_EQ(m["name"], "Fixture.Customer");
  EXPECT_CONTAINS(text, "Number of Methods:   " + m["number_of_methods"].get<std::string>());
  ASSERT_FALSE(m["method_descs"].empty());
  for (const Json& md : m["method_descs"]) {
    EXPECT_CONTAINS(text, " " + md["name"].get<std::string>() + "\n");
  }

  const Json& t = docs[2]["result"];
  EXPECT_CONTAINS(text, "ThreadCount:      " + std::to_string(t["thread_count"].get<int>()) + "\n");
  EXPECT_EQ(t["threads"].size(), t["thread_count"].get<size_t>() - t["dead_count"].get<size_t>() +
                                     t["dead_count"].get<size_t>());
  for (const Json& th : t["threads"]) {
    EXPECT_TRUE(IsHex(th["thread_object"]));
    EXPECT_TRUE(th["os_id"].is_number());
  }
}

}  // namespace
}  // namespace clrdiag::testing
