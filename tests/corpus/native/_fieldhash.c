#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *
fieldhash_digest(PyObject *self, PyObject *arg)
{
    PyObject *seq = PySequence_Fast(arg, "digest() takes a sequence of fields");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_hash_t x = PyObject_Hash(items[i]);
        if (x == -1) {
            Py_DECREF(seq);
            return NULL;
        }
        h ^= (uint64_t)x;
        h *= 1099511628211ULL;
    }
    return PyLong_FromUnsignedLongLong(h);
}

static PyMethodDef fieldhash_methods[] = {
    {"digest", fieldhash_digest, METH_O, "64-bit digest of a sequence of hashable fields."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fieldhash_module = {
    PyModuleDef_HEAD_INIT, "_fieldhash", "Digests of record fields.", -1, fieldhash_methods,
};

PyMODINIT_FUNC
PyInit__fieldhash(void)
{
    return PyModule_Create(&fieldhash_module);
}
