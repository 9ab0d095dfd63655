/* A C extension with the two leaks C code makes, each behind a flag so the same call can be
 * made correctly too:
 *
 * - stash(size, leak, container): builds a record holding bytes(size) and keeps it in a C array
 *   the gc cannot see. Leaking, the array only grows; otherwise it is a ring of RING entries
 *   whose oldest is released when a new one comes (a bounded cache in C).
 * - make(size, leak, container): returns a new record; leaking, with one reference too many
 *   (the missing Py_DECREF), so it outlives the caller's last use of it.
 * - scratch(size, leak): malloc()s size bytes and writes them (so they are resident); frees
 *   them unless leaking. Python's allocator never sees this memory.
 *
 * A record is [payload, n] for container "list", {"payload": payload, "n": n} for "dict". The
 * list is tracked by the gc; the dict is not (CPython tracks a dict only once it holds a
 * container), so nothing the gc tracks leads to a dict that only C holds.
 *
 * Only stable C API calls: it builds against CPython 3.9 to 3.13. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#define RING 16

static PyObject **kept;
static Py_ssize_t n_kept, cap_kept;
static long made;

/* A record of bytes(size), written through, and a serial number: a new reference. */
static PyObject *new_record(Py_ssize_t size, const char *container) {
    int as_list = strcmp(container, "list") == 0;
    if (!as_list && strcmp(container, "dict") != 0) {
        PyErr_SetString(PyExc_ValueError, "container must be 'list' or 'dict'");
        return NULL;
    }
    PyObject *payload = PyBytes_FromStringAndSize(NULL, size);
    if (payload == NULL) {
        return NULL;
    }
    memset(PyBytes_AS_STRING(payload), 'x', (size_t)size);
    PyObject *n = PyLong_FromLong(made++);
    PyObject *d = as_list ? PyList_New(0) : PyDict_New();
    int failed = n == NULL || d == NULL;
    if (!failed && as_list) {
        failed = PyList_Append(d, payload) < 0 || PyList_Append(d, n) < 0;
    } else if (!failed) {
        failed = PyDict_SetItemString(d, "payload", payload) < 0 ||
                 PyDict_SetItemString(d, "n", n) < 0;
    }
    if (failed) {
        Py_XDECREF(d);
        d = NULL;
    }
    Py_XDECREF(n);
    Py_DECREF(payload);
    return d;
}

static PyObject *stash(PyObject *self, PyObject *args) {
    Py_ssize_t size;
    int leak;
    const char *container;
    if (!PyArg_ParseTuple(args, "nps", &size, &leak, &container)) {
        return NULL;
    }
    PyObject *d = new_record(size, container);
    if (d == NULL) {
        return NULL;
    }
    if (!leak && n_kept == RING) {
        /* the ring is full: release the oldest entry */
        PyObject *oldest = kept[0];
        memmove(kept, kept + 1, (RING - 1) * sizeof(PyObject *));
        n_kept--;
        Py_DECREF(oldest);
    }
    if (n_kept == cap_kept) {
        Py_ssize_t cap = cap_kept ? cap_kept * 2 : RING;
        PyObject **grown = realloc(kept, (size_t)cap * sizeof(PyObject *));
        if (grown == NULL) {
            Py_DECREF(d);
            return PyErr_NoMemory();
        }
        kept = grown;
        cap_kept = cap;
    }
    kept[n_kept++] = d; /* the array owns the reference new_record made */
    Py_RETURN_NONE;
}

static PyObject *make(PyObject *self, PyObject *args) {
    Py_ssize_t size;
    int leak;
    const char *container;
    if (!PyArg_ParseTuple(args, "nps", &size, &leak, &container)) {
        return NULL;
    }
    PyObject *d = new_record(size, container);
    if (d != NULL && leak) {
        Py_INCREF(d); /* a reference nobody will release */
    }
    return d;
}

static PyObject *scratch(PyObject *self, PyObject *args) {
    Py_ssize_t size;
    int leak;
    if (!PyArg_ParseTuple(args, "np", &size, &leak)) {
        return NULL;
    }
    if (size < 1) {
        PyErr_SetString(PyExc_ValueError, "size must be positive");
        return NULL;
    }
    char *buf = malloc((size_t)size);
    if (buf == NULL) {
        return PyErr_NoMemory();
    }
    memset(buf, 1, (size_t)size);
    unsigned long sum = (unsigned char)buf[0] + (unsigned char)buf[size - 1];
    if (!leak) {
        free(buf);
    }
    return PyLong_FromUnsignedLong(sum);
}

static PyObject *held(PyObject *self, PyObject *unused) { return PyLong_FromSsize_t(n_kept); }

static PyMethodDef methods[] = {
    {"stash", stash, METH_VARARGS, "Keep a new record in a C array (leak: it only grows)."},
    {"make", make, METH_VARARGS, "Return a new record (leak: with a reference too many)."},
    {"scratch", scratch, METH_VARARGS, "malloc and write size bytes (leak: never free them)."},
    {"held", held, METH_NOARGS, "Records the C array holds."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cstash", NULL, -1, methods};

PyMODINIT_FUNC PyInit_cstash(void) { return PyModule_Create(&module); }
