// Default options of the sanitizer runtimes, compiled into every executable of a
// CLRDIAG_SANITIZE build (cmake/sanitizers.cmake): the test binaries, clrdiagd, clrdiag and
// clrdiag-worker get them however they are started (ctest, the harness, the daemon spawning a
// worker, by hand). ASAN_OPTIONS / UBSAN_OPTIONS / LSAN_OPTIONS in the environment still win.
//
// Every finding ends the process with a non-zero status, so the test that started it fails.

extern "C" {

// halt_on_error: stop at the first error (also for -fsanitize-recover builds).
// detect_leaks: LeakSanitizer at exit; the suppressions file lists the few leaks that are not
//   ours (each with its reason); our own leaks are fixed, not suppressed.
// check_initialization_order / strict_init_order: static-init order bugs across files.
// detect_stack_use_after_return: use of a returned frame's locals (fake stacks).
// strict_string_checks: str* interceptors check the whole string, not just what they read.
const char* __asan_default_options() {
  return "halt_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:"
         "detect_stack_use_after_return=1:strict_string_checks=1";
}

// print_stacktrace: where the undefined behaviour happened; halt_on_error: the default
// (recover) only prints a line and goes on, and the test passes.
const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }

// The suppressions file by absolute path: the build tree knows its source tree.
const char* __lsan_default_options() { return "suppressions=" CLRDIAG_LSAN_SUPPRESSIONS; }

}  // extern "C"
