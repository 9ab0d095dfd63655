// A C++ extension whose memory comes from operator new, which reaches malloc: keep(size) keeps a
// new std::vector<char>(size) in a static vector until release().
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <memory>
#include <vector>

static std::vector<std::unique_ptr<std::vector<char>>> kept;

static PyObject *keep(PyObject *, PyObject *args) {
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "n", &size)) return nullptr;
    kept.emplace_back(new std::vector<char>(static_cast<size_t>(size), 1)); /* NEW_LINE */
    Py_RETURN_NONE;
}

static PyObject *release(PyObject *, PyObject *) {
    kept.clear();
    kept.shrink_to_fit();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"keep", keep, METH_VARARGS, "keep a new std::vector<char>(size)."},
    {"release", release, METH_NOARGS, "delete every vector kept."},
    {nullptr, nullptr, 0, nullptr},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cppnew", nullptr, -1, methods};

PyMODINIT_FUNC PyInit_cppnew(void) { return PyModule_Create(&module); }
