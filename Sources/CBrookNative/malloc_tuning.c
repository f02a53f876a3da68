#include "CBrookNative.h"

#if defined(__GLIBC__)
#include <malloc.h>
int brook_set_malloc_arenas(int n) { return mallopt(M_ARENA_MAX, n); }
int brook_set_malloc_thresholds(long mmap_threshold, long trim_threshold) {
    return mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) && mallopt(M_TRIM_THRESHOLD, (int)trim_threshold);
}
#else
int brook_set_malloc_arenas(int n) { (void)n; return 0; }
int brook_set_malloc_thresholds(long mmap_threshold, long trim_threshold) {
    (void)mmap_threshold;
    (void)trim_threshold;
    return 0;
}
#endif
