#define PY_SSIZE_T_CLEAN
#include <Python.h>
static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "strongbox._kms", NULL, -1, NULL};
PyMODINIT_FUNC
PyInit__kms(void)
{
    return PyModule_Create(&module_def);
}
