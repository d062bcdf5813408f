#include "testutil.h"
static Suite *s(void) { return suite_create("x"); }
MP_TEST_MAIN(s)
