// A module for the tests: a shared object without the entry point.

extern "C" __attribute__((visibility("default"))) int something_else() { return 42; }
