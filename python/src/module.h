/*
 * python/src/module.h - what the C files of strongbox._strongbox share:
 * the exception classes, the key types, error raising and key lists.
 */
#ifndef STRONGBOX_PY_MODULE_H
#define STRONGBOX_PY_MODULE_H

#include "objects.h"

extern PyObject *Error, *EncryptError, *DecryptError, *RecipientError, *IdentityError, *FormatError,
    *PassphraseError, *KmsError;
extern PyTypeObject RecipientType, IdentityType;

/* Raise the exception for a library error code in a context class (with the
 * library's message and the attributes code and code_name); returns NULL. */
PyObject *raise_sbx(PyObject *cls, int code);

/* Borrowed sbx_recipient / sbx_identity pointers of a sequence (or of one key). */
typedef struct {
    PyObject *seq;
    void **ptrs;
    size_t n;
} keylist;

/* sbx_passphrase_cb over a Py_buffer (payload; NULL: no passphrase given). */
int fixed_passphrase(sbx_buf *out, void *payload);

int keylist_get(keylist *k, PyObject *obj, PyTypeObject *type, const char *what);
void keylist_release(keylist *k);

/* secfile.c: the functions behind strongbox.SecFile. */
PyObject *sf_seal(PyObject *self, PyObject *args, PyObject *kw);
PyObject *sf_unseal(PyObject *self, PyObject *args, PyObject *kw);
PyObject *sf_meta(PyObject *self, PyObject *args);
PyObject *sf_rotate(PyObject *self, PyObject *args);
PyObject *sf_pad(PyObject *self, PyObject *args);
PyObject *sf_unpad(PyObject *self, PyObject *args);
PyObject *sf_destroy(PyObject *self, PyObject *args);
PyObject *sf_sign(PyObject *self, PyObject *args);
PyObject *sf_verify(PyObject *self, PyObject *args);
PyObject *sf_legacy_decrypt(PyObject *self, PyObject *args);

#define SECFILE_METHODS                                                                            \
    {"seal_file", (PyCFunction)(void (*)(void))sf_seal, METH_VARARGS | METH_KEYWORDS, NULL},       \
        {"unseal_file", (PyCFunction)(void (*)(void))sf_unseal, METH_VARARGS | METH_KEYWORDS,      \
         NULL},                                                                                    \
        {"meta_read", sf_meta, METH_VARARGS, NULL},                                                \
        {"rotate_file", sf_rotate, METH_VARARGS, NULL}, {"pad_file", sf_pad, METH_VARARGS, NULL},  \
        {"unpad_file", sf_unpad, METH_VARARGS, NULL}, {"destroy", sf_destroy, METH_VARARGS, NULL}, \
        {"pem_sign", sf_sign, METH_VARARGS, NULL}, {"pem_verify", sf_verify, METH_VARARGS, NULL},  \
        {"legacy_decrypt", sf_legacy_decrypt, METH_VARARGS, NULL},

#endif
