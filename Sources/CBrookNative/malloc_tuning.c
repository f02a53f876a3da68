#include "CBrookNative.h"

#if defined(__GLIBC__)
#include <malloc.h>
int brook_set_malloc_arenas(int n) { return mallopt(M_ARENA_MAX, n); }
#else
int brook_set_malloc_arenas(int n) { (void)n; return 0; }
#endif
