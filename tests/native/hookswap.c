/* A C extension that installs allocator hooks over whatever is there and removes them again,
 * as profilers and tracemalloc do while memsleuth runs underneath.
 *
 * Like tracemalloc, its RAW hooks take the GIL (a tracer needs it to read the Python stack),
 * and each hook's state dies when the hook is removed. A thread that picked up the hook without
 * holding the GIL can therefore run it after `remove()`: the hook then aborts the process with
 * a message, where tracemalloc would read freed memory. memsleuth's own threads must never be
 * such a thread. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    PyMemAllocatorEx prev;
    int alive;
    int gil; /* take the GIL around allocations (the RAW domain, as tracemalloc does) */
} Hook;

static Hook *hooks[3];
static __thread int reentrant;
static unsigned long long calls;

static void check(Hook *h) {
    if (!h->alive) {
        fprintf(stderr, "hookswap: an allocator hook ran after it was removed\n");
        abort();
    }
    calls++;
}

static void *h_alloc(Hook *h, int zero, size_t n, size_t size) {
    if (!h->gil) {
        check(h);
    }
    if (!h->gil || reentrant) {
        return zero ? h->prev.calloc(h->prev.ctx, n, size) : h->prev.malloc(h->prev.ctx, size);
    }
    reentrant = 1;
    PyGILState_STATE g = PyGILState_Ensure();
    check(h);
    void *p = zero ? h->prev.calloc(h->prev.ctx, n, size) : h->prev.malloc(h->prev.ctx, size);
    PyGILState_Release(g);
    reentrant = 0;
    return p;
}

static void *h_malloc(void *ctx, size_t size) { return h_alloc(ctx, 0, 1, size); }
static void *h_calloc(void *ctx, size_t n, size_t size) { return h_alloc(ctx, 1, n, size); }

static void *h_realloc(void *ctx, void *ptr, size_t size) {
    Hook *h = ctx;
    if (!h->gil) {
        check(h);
    }
    if (!h->gil || reentrant) {
        return h->prev.realloc(h->prev.ctx, ptr, size);
    }
    reentrant = 1;
    PyGILState_STATE g = PyGILState_Ensure();
    check(h);
    void *p = h->prev.realloc(h->prev.ctx, ptr, size);
    PyGILState_Release(g);
    reentrant = 0;
    return p;
}

static void h_free(void *ctx, void *ptr) {
    Hook *h = ctx;
    h->prev.free(h->prev.ctx, ptr);
}

static const PyMemAllocatorDomain domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                PYMEM_DOMAIN_OBJ};

static PyObject *install(PyObject *self, PyObject *unused) {
    if (hooks[0] != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "already installed");
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        /* never freed: a stale caller must find it, dead, rather than reused memory */
        Hook *h = calloc(1, sizeof(Hook));
        if (h == NULL) {
            return PyErr_NoMemory();
        }
        PyMem_GetAllocator(domains[i], &h->prev);
        h->alive = 1;
        h->gil = domains[i] == PYMEM_DOMAIN_RAW;
        PyMemAllocatorEx ours = {h, h_malloc, h_calloc, h_realloc, h_free};
        PyMem_SetAllocator(domains[i], &ours);
        hooks[i] = h;
    }
    Py_RETURN_NONE;
}

static PyObject *remove_hooks(PyObject *self, PyObject *unused) {
    for (int i = 0; i < 3; i++) {
        if (hooks[i] == NULL) {
            continue;
        }
        PyMem_SetAllocator(domains[i], &hooks[i]->prev);
        hooks[i]->alive = 0;
        hooks[i] = NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *count(PyObject *self, PyObject *unused) {
    return PyLong_FromUnsignedLongLong(calls);
}

static PyMethodDef methods[] = {
    {"install", install, METH_NOARGS, "Install the hooks over the current allocators."},
    {"remove", remove_hooks, METH_NOARGS, "Restore the allocators found at install."},
    {"count", count, METH_NOARGS, "Allocations that went through the hooks."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "hookswap", NULL, -1, methods};

PyMODINIT_FUNC PyInit_hookswap(void) { return PyModule_Create(&module); }
