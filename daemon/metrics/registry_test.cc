// The Prometheus text exposition of the registry: HELP/TYPE lines, label escaping, number
// formats, histogram buckets, and the daemon's metric names.
#include "daemon/metrics/registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <sstream>

#include "daemon/metrics/daemon_metrics.h"

namespace clrdiag::metrics {
namespace {

// Every line is a comment (# HELP / # TYPE with a valid name) or `name{labels} value`, with
// label values properly quoted and escaped.
void ExpectValidExposition(const std::string& text) {
  static const std::regex kComment(R"(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*)");
  static const std::regex kSample(
      R"([a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? )"
      R"((\+Inf|-Inf|NaN|-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?))");
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n');
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    EXPECT_TRUE(std::regex_match(line, kComment) || std::regex_match(line, kSample))
        << "not a valid exposition line: " << line;
  }
}

TEST(RegistryTest, CounterWithLabelsRendersHelpTypeAndSortedSeries) {
  Registry r;
  CounterFamily* c = r.AddCounter("x_requests_total", "Requests.", {"method", "code"});
  c->Inc({"b", "OK"});
  c->Inc({"a", "OK"}, 2);
  c->Inc({"b", "OK"});
  c->Inc({"a", "OK"}, -5);  // counters never go down
  EXPECT_EQ(r.Render(),
            "# HELP x_requests_total Requests.\n"
            "# TYPE x_requests_total counter\n"
            "x_requests_total{method=\"a\",code=\"OK\"} 2\n"
            "x_requests_total{method=\"b\",code=\"OK\"} 2\n");
  EXPECT_EQ(c->Value({"a", "OK"}), 2);
  EXPECT_EQ(c->Value({"never", "seen"}), 0);
}

TEST(RegistryTest, FamiliesRenderInRegistrationOrderAndEmptyOnesOnlyComment) {
  Registry r;
  r.AddGauge("z_first", "First.")->Set({}, 7);
  r.AddCounter("a_second_total", "Second.", {"l"});
  EXPECT_EQ(r.Render(),
            "# HELP z_first First.\n# TYPE z_first gauge\nz_first 7\n"
            "# HELP a_second_total Second.\n# TYPE a_second_total counter\n");
}

TEST(RegistryTest, LabelValuesAndHelpAreEscaped) {
  Registry r;
  GaugeFamily* g = r.AddGauge("x_info", "Line one\nback\\slash \"quoted\"", {"v"});
  g->Set({"a\"b\\c\nd"}, 1);
  std::string text = r.Render();
  EXPECT_EQ(text,
            "# HELP x_info Line one\\nback\\\\slash \"quoted\"\n"
            "# TYPE x_info gauge\n"
            "x_info{v=\"a\\\"b\\\\c\\nd\"} 1\n");
  ExpectValidExposition(text);
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("\\\"\n"), "\\\\\\\"\\n");
}

TEST(RegistryTest, NumbersAreFormattedExactlyAndSpecialValuesByName) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(123456789012345.0), "123456789012345");  // bytes: no exponent
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1e300), "1e+300");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatValue(NAN), "NaN");
}

TEST(RegistryTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  HistogramFamily* h = r.AddHistogram("x_seconds", "Durations.", {"type"}, {0.5, 1, 2.5});
  h->Observe({"full"}, 0.25);
  h->Observe({"full"}, 0.5);  // on the bound: counts in that bucket (le is "less or equal")
  h->Observe({"full"}, 2);
  h->Observe({"full"}, 10);
  EXPECT_EQ(h->Count({"full"}), 4u);
  std::string text = r.Render();
  EXPECT_EQ(text,
            "# HELP x_seconds Durations.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{type=\"full\",le=\"0.5\"} 2\n"
            "x_seconds_bucket{type=\"full\",le=\"1\"} 2\n"
            "x_seconds_bucket{type=\"full\",le=\"2.5\"} 3\n"
            "x_seconds_bucket{type=\"full\",le=\"+Inf\"} 4\n"
            "x_seconds_sum{type=\"full\"} 12.75\n"
            "x_seconds_count{type=\"full\"} 4\n");
  ExpectValidExposition(text);
}

TEST(RegistryTest, HistogramWithoutLabelsHasOnlyLe) {
  Registry r;
  r.AddHistogram("x_h", "H.", {}, {1})->Observe({}, 3);
  EXPECT_EQ(r.Render(),
            "# HELP x_h H.\n# TYPE x_h histogram\n"
            "x_h_bucket{le=\"1\"} 0\nx_h_bucket{le=\"+Inf\"} 1\nx_h_sum 3\nx_h_count 1\n");
}

TEST(RegistryTest, ScrapeHooksRunBeforeEachRender) {
  Registry r;
  GaugeFamily* g = r.AddGauge("x_now", "Now.");
  int calls = 0;
  r.AddScrapeHook([&] { g->Set({}, ++calls); });
  EXPECT_NE(r.Render().find("x_now 1\n"), std::string::npos);
  EXPECT_NE(r.Render().find("x_now 2\n"), std::string::npos);
}

TEST(RegistryDeathTest, InvalidNamesAndDuplicatesAreProgrammingErrors) {
  Registry r;
  r.AddCounter("x_total", "X.");
  EXPECT_DEATH(r.AddCounter("x_total", "Again."), "registered twice");
  EXPECT_DEATH(r.AddGauge("1abc", "Bad."), "invalid metric name");
  EXPECT_DEATH(r.AddGauge("x-y", "Bad."), "invalid metric name");
  EXPECT_DEATH(r.AddGauge("x_g", "Bad.", {"__reserved"}), "invalid or repeated label");
  EXPECT_DEATH(r.AddHistogram("x_h", "Bad.", {"le"}, {1}), "invalid or repeated label");
  EXPECT_DEATH(r.AddHistogram("x_h2", "Bad.", {}, {2, 1}), "ascending");
  CounterFamily* c = r.AddCounter("y_total", "Y.", {"a"});
  EXPECT_DEATH(c->Inc({"one", "two"}), "2 label values for 1 labels");
}

TEST(DaemonMetricsTest, NamesStartWithClrdiagAndTheExpositionParses) {
  MetricSources src;
  src.store_totals = [] { return MetricSources::StoreTotals{3, 12345}; };
  src.store_free_bytes = [] { return uint64_t{1} << 40; };
  src.active_sessions = [] { return size_t{2}; };
  DaemonMetrics m("1.2.3", src);
  m.ObserveCollection("Full", absl::OkStatus(), absl::Milliseconds(1500));
  m.ObserveCollection("Mini", absl::NotFoundError("no such process"), absl::Milliseconds(3));
  m.ObserveRpc("/clrdiag.v1.Diagnostics/ListProcesses", 0);
  m.ObserveRpc("/grpc.health.v1.Health/Check", 14);
  std::string text = m.Render();
  ExpectValidExposition(text);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::string name = line[0] == '#' ? line.substr(7) : line;
    EXPECT_EQ(name.rfind("clrdiag_", 0), 0u) << line;
  }
  for (const char* want : {
           "clrdiag_build_info{version=\"1.2.3\"} 1\n",
           "clrdiag_collections_total{type=\"full\",result=\"ok\"} 1\n",
           "clrdiag_collections_total{type=\"heap\",result=\"ok\"} 0\n",
           "clrdiag_collections_total{type=\"mini\",result=\"not_found\"} 1\n",
           "clrdiag_collection_duration_seconds_bucket{type=\"full\",le=\"1\"} 0\n",
           "clrdiag_collection_duration_seconds_bucket{type=\"full\",le=\"2.5\"} 1\n",
           "clrdiag_collection_duration_seconds_sum{type=\"full\"} 1.5\n",
           "clrdiag_collection_duration_seconds_count{type=\"mini\"} 1\n",
           "clrdiag_store_dumps 3\n",
           "clrdiag_store_bytes 12345\n",
           "clrdiag_store_free_bytes 1099511627776\n",
           "clrdiag_analysis_sessions 2\n",
           "clrdiag_grpc_requests_total{service=\"clrdiag.v1.Diagnostics\",method="
           "\"ListProcesses\","
           "code=\"OK\"} 1\n",
           "clrdiag_grpc_requests_total{service=\"grpc.health.v1.Health\",method=\"Check\","
           "code=\"UNAVAILABLE\"} 1\n",
       }) {
    EXPECT_NE(text.find(want), std::string::npos) << "missing: " << want << "in:\n" << text;
  }
  EXPECT_EQ(DaemonMetrics::GrpcCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(DaemonMetrics::GrpcCodeName(99), "UNKNOWN");
}

}  // namespace
}  // namespace clrdiag::metrics
