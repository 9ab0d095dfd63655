/* A plain C library (no Python), for ctypes to load while memsleuth is attached: what it
 * mallocs must be seen, which needs its allocator entries patched as it is loaded. */
#include <stdlib.h>
#include <string.h>

void *grab(size_t size) {
    void *p = malloc(size); /* GRAB */
    if (p != NULL) memset(p, 1, size);
    return p; /* kept by the caller, never freed */
}
