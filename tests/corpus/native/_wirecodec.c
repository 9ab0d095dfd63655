#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

static PyObject *
wirecodec_encode(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *src = view.buf;
    Py_ssize_t n = view.len;
    unsigned char *out = malloc((size_t)(2 * n + 16));
    if (out == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    Py_ssize_t o = 0, i = 0;
    while (i < n) {
        unsigned char c = src[i];
        Py_ssize_t run = 1;
        while (i + run < n && src[i + run] == c && run < 255)
            run++;
        out[o++] = (unsigned char)run;
        out[o++] = c;
        i += run;
    }
    PyObject *result = PyBytes_FromStringAndSize((const char *)out, o);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
wirecodec_decode(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *src = view.buf;
    Py_ssize_t n = view.len, total = 0;
    if (n % 2) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "truncated run-length data");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i += 2)
        total += src[i];
    PyObject *result = PyBytes_FromStringAndSize(NULL, total);
    if (result != NULL) {
        char *dst = PyBytes_AS_STRING(result);
        for (Py_ssize_t i = 0; i < n; i += 2) {
            memset(dst, src[i + 1], src[i]);
            dst += src[i];
        }
    }
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef wirecodec_methods[] = {
    {"encode", wirecodec_encode, METH_O, "Run-length encode a bytes-like object."},
    {"decode", wirecodec_decode, METH_O, "Decode run-length encoded bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef wirecodec_module = {
    PyModuleDef_HEAD_INIT, "_wirecodec", "Run-length codec for telemetry frames.", -1,
    wirecodec_methods,
};

PyMODINIT_FUNC
PyInit__wirecodec(void)
{
    return PyModule_Create(&wirecodec_module);
}
