/* A C extension that takes memory from the C library directly, as real extensions do, so the
 * native instrument has something to find. Every call keeps what it takes until release():
 *
 * - leak(size): malloc()s size bytes and writes them.
 * - chain(n): calloc(n, 16), then realloc() to n * 64 bytes.
 * - aligned(size): posix_memalign(64, size), aligned_alloc(4096, size) and memalign(256, size).
 * - mapped(size): an anonymous mmap() of size bytes, written.
 * - churn(size, n): n rounds of malloc(size) and free(): memory in steady state, none kept.
 * - release(): frees and unmaps everything kept.
 * - malloc_address(): the address this module calls malloc at (its global offset table's
 *   entry), for `attach --native`'s test that the entry is put back.
 *
 * The line of each allocation is a #define, so the tests can find it without counting lines.
 * Only stable C API calls: it builds against CPython 3.9 to 3.13. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h> /* memalign */
#include <sys/mman.h>

#define MAX_KEPT 65536

static struct {
    void *p;
    size_t len; /* nonzero: a mapping of this length */
} kept[MAX_KEPT];
static Py_ssize_t n_kept;

static int keep(void *p, size_t len) {
    if (p == NULL || n_kept == MAX_KEPT) {
        PyErr_NoMemory();
        return -1;
    }
    kept[n_kept].p = p;
    kept[n_kept].len = len;
    n_kept++;
    return 0;
}

static PyObject *leak(PyObject *self, PyObject *args) {
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "n", &size)) return NULL;
    char *buf = malloc((size_t)size); /* LEAK_LINE */
    if (buf != NULL) memset(buf, 1, (size_t)size);
    if (keep(buf, 0) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *chain(PyObject *self, PyObject *args) {
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "n", &n)) return NULL;
    char *buf = calloc((size_t)n, 16);
    if (buf == NULL) return PyErr_NoMemory();
    char *grown = realloc(buf, (size_t)n * 64);
    if (grown == NULL) {
        free(buf);
        return PyErr_NoMemory();
    }
    memset(grown, 2, (size_t)n * 64);
    if (keep(grown, 0) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *aligned(PyObject *self, PyObject *args) {
    Py_ssize_t size;
    void *p = NULL;
    if (!PyArg_ParseTuple(args, "n", &size)) return NULL;
    if (posix_memalign(&p, 64, (size_t)size) != 0) return PyErr_NoMemory();
    if (keep(p, 0) < 0) return NULL;
    /* aligned_alloc wants a multiple of the alignment */
    if (keep(aligned_alloc(4096, ((size_t)size + 4095) / 4096 * 4096), 0) < 0) return NULL;
    if (keep(memalign(256, (size_t)size), 0) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *mapped(PyObject *self, PyObject *args) {
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "n", &size)) return NULL;
    void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return PyErr_NoMemory();
    memset(p, 3, (size_t)size);
    if (keep(p, (size_t)size) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *churn(PyObject *self, PyObject *args) {
    Py_ssize_t size, n;
    if (!PyArg_ParseTuple(args, "nn", &size, &n)) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        char *buf = malloc((size_t)size);
        if (buf == NULL) return PyErr_NoMemory();
        buf[0] = (char)i;
        free(buf);
    }
    Py_RETURN_NONE;
}

static PyObject *release(PyObject *self, PyObject *unused) {
    for (Py_ssize_t i = 0; i < n_kept; i++) {
        if (kept[i].len) munmap(kept[i].p, kept[i].len);
        else free(kept[i].p);
    }
    n_kept = 0;
    Py_RETURN_NONE;
}

static PyObject *malloc_address(PyObject *self, PyObject *unused) {
    /* through a volatile pointer: the compiler must read the table's entry, not fold it */
    void *(*volatile f)(size_t) = malloc;
    return PyLong_FromVoidPtr((void *)f);
}

static PyMethodDef methods[] = {
    {"leak", leak, METH_VARARGS, "malloc size bytes and keep them."},
    {"chain", chain, METH_VARARGS, "calloc(n, 16), realloc to n * 64, keep."},
    {"aligned", aligned, METH_VARARGS, "posix_memalign, aligned_alloc and memalign size bytes."},
    {"mapped", mapped, METH_VARARGS, "mmap size bytes and keep the mapping."},
    {"churn", churn, METH_VARARGS, "malloc and free size bytes n times."},
    {"release", release, METH_NOARGS, "free and unmap everything kept."},
    {"malloc_address", malloc_address, METH_NOARGS, "where this module's malloc calls go."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cmem", NULL, -1, methods};

PyMODINIT_FUNC PyInit_cmem(void) { return PyModule_Create(&module); }
