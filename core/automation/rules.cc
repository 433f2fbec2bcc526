#include "core/automation/rules.h"

#include <fnmatch.h>

namespace clrdiag::automation {

bool Pattern::is_glob() const { return text.find_first_of("*?[") != std::string::npos; }

bool Pattern::Matches(const std::string& value) const {
  if (!is_glob()) return value == text;
  return ::fnmatch(text.c_str(), value.c_str(), 0) == 0;
}

const char* TriggerTypeName(TriggerType t) {
  switch (t) {
    case TriggerType::kStartup:
      return "startup";
    case TriggerType::kWorkingSet:
      return "working_set";
    case TriggerType::kCpu:
      return "cpu";
    case TriggerType::kThreads:
      return "threads";
    case TriggerType::kFds:
      return "fds";
    case TriggerType::kCounter:
      return "counter";
    case TriggerType::kException:
      return "exception";
    case TriggerType::kCrash:
      return "crash";
  }
  return "?";
}

const EgressConfig* AutomationConfig::FindEgress(const std::string& name) const {
  for (const auto& e : egress) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

}  // namespace clrdiag::automation
