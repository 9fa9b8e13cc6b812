/*
 * python/src/_strongbox.c - strongbox._strongbox, the CPython extension over
 * libstrongbox (linked statically; the module needs only libcrypto).
 *
 * Implementation notes
 *
 * Objects: Recipient and Identity own one sbx_recipient / sbx_identity; the
 * Python classes of strongbox.x25519 and strongbox.ssh subclass them (a
 * classmethod builds an instance of cls). Writer and Reader hold an age
 * encryptor / decryptor chain over a file path (descriptors, no GIL needed)
 * or a Python file object (a sink or source whose callbacks take the GIL with
 * PyGILState_Ensure, so the crypto itself still runs without it). TmpFD is an
 * sbx_tmpfd with a lock: every call releases the GIL and holds the lock.
 *
 * Errors: every failure raises a subclass of strongbox.Error chosen by the
 * caller's context (encrypting, decrypting, parsing a recipient or an
 * identity), refined by the library's code (a malformed file on decryption is
 * FormatError, a wrong passphrase PassphraseError), with the library's
 * message and the attributes code and code_name. Out of memory is
 * MemoryError. An exception raised by a Python file object inside a callback
 * is kept and re-raised as it was.
 *
 * Secrets: plaintext from decrypt() is copied into the bytes object and the
 * library's buffer is wiped; identity strings likewise. Passphrases pass
 * through the library's secure memory.
 *
 * Only the limited C API of CPython 3.9 and older is used.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "strongbox/strongbox.h"
#include "strongbox/sys/age.h"

#include "module.h"

/* ---- errors ---- */

PyObject *Error, *EncryptError, *DecryptError, *RecipientError, *IdentityError, *FormatError,
    *PassphraseError, *KmsError;

/* see module.h */
PyObject *
raise_sbx(PyObject *cls, int code)
{
    const sbx_error *e = sbx_error_last();
    const char *msg = e->code == code ? e->message : sbx_strerror(code);
    if (code == SBX_ENOMEM)
        return PyErr_NoMemory();
    if (cls == DecryptError && (code == SBX_EHEADER || code == SBX_EARMOR || code == SBX_EFORMAT))
        cls = FormatError;
    PyObject *exc = PyObject_CallFunction(cls, "s", msg);
    if (exc == NULL)
        return NULL;
    PyObject *c = PyLong_FromLong(code);
    if (c == NULL || PyObject_SetAttrString(exc, "code", c) < 0 ||
        PyObject_SetAttrString(exc, "code_name", PyUnicode_FromString(sbx_error_name(code))) < 0) {
        Py_XDECREF(c);
        Py_DECREF(exc);
        return NULL;
    }
    Py_DECREF(c);
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *
m_raise_error(PyObject *self, PyObject *args)
{
    PyObject *cls;
    int code;
    (void)self;
    if (!PyArg_ParseTuple(args, "Oi", &cls, &code))
        return NULL;
    return raise_sbx(cls, code);
}

static PyObject *
bytes_from_buf(sbx_buf *b)
{
    PyObject *r = PyBytes_FromStringAndSize((const char *)b->ptr, (Py_ssize_t)b->len);
    sbx_buf_dispose(b);
    return r;
}

/* ---- Recipient ---- */

PyTypeObject RecipientType, IdentityType;

static void
recipient_dealloc(RecipientObject *self)
{
    sbx_recipient_free(self->r);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
recipient_wrap(PyTypeObject *cls, sbx_recipient *r)
{
    RecipientObject *o = (RecipientObject *)cls->tp_alloc(cls, 0);
    if (o == NULL) {
        sbx_recipient_free(r);
        return NULL;
    }
    o->r = r;
    return (PyObject *)o;
}

static PyObject *
recipient_from_str(PyObject *cls, PyObject *arg)
{
    sbx_recipient *r = NULL;
    const char *s = PyUnicode_AsUTF8(arg);
    if (s == NULL)
        return NULL;
    int err = sbx_recipient_parse(&r, s);
    if (err < 0)
        return raise_sbx(RecipientError, err);
    return recipient_wrap((PyTypeObject *)cls, r);
}

static PyObject *
recipient_str(RecipientObject *self)
{
    sbx_buf b = SBX_BUF_INIT;
    int err = sbx_recipient_to_string(self->r, &b);
    if (err < 0)
        return raise_sbx(RecipientError, err);
    PyObject *s = PyUnicode_FromStringAndSize((const char *)b.ptr, (Py_ssize_t)b.len);
    sbx_buf_dispose(&b);
    return s;
}

static PyObject *
recipient_repr(RecipientObject *self)
{
    PyObject *s = recipient_str(self), *r;
    if (s == NULL) {
        PyErr_Clear();
        return PyUnicode_FromFormat("<%s %s>", Py_TYPE(self)->tp_name, sbx_recipient_type(self->r));
    }
    r = PyUnicode_FromFormat("<%s %U>", Py_TYPE(self)->tp_name, s);
    Py_DECREF(s);
    return r;
}

static PyObject *
recipient_type_get(RecipientObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(sbx_recipient_type(self->r));
}

static PyMethodDef recipient_methods[] = {
    {"from_str", (PyCFunction)recipient_from_str, METH_O | METH_CLASS,
     "from_str(s) -> Recipient\n\nParse a recipient: 'age1...', 'ssh-ed25519 AAAA...' or "
     "'ssh-rsa AAAA...'. Raises RecipientError."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef recipient_getset[] = {
    {"type", (getter)recipient_type_get, NULL,
     "The age stanza type this recipient writes: 'X25519', 'scrypt', 'ssh-ed25519', 'ssh-rsa'.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject RecipientType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "strongbox.Recipient",
    .tp_basicsize = sizeof(RecipientObject),
    .tp_dealloc = (destructor)recipient_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Who a file is encrypted to (a public key). Build with from_str().",
    .tp_methods = recipient_methods,
    .tp_getset = recipient_getset,
    .tp_str = (reprfunc)recipient_str,
    .tp_repr = (reprfunc)recipient_repr,
};

/* ---- Identity ---- */

static void
identity_dealloc(IdentityObject *self)
{
    sbx_identity_free(self->id);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
identity_wrap(PyTypeObject *cls, sbx_identity *id)
{
    IdentityObject *o = (IdentityObject *)cls->tp_alloc(cls, 0);
    if (o == NULL) {
        sbx_identity_free(id);
        return NULL;
    }
    o->id = id;
    return (PyObject *)o;
}

static PyObject *
identity_generate(PyObject *cls, PyObject *unused)
{
    sbx_identity *id = NULL;
    (void)unused;
    int err = sbx_identity_generate(&id);
    if (err < 0)
        return raise_sbx(IdentityError, err);
    return identity_wrap((PyTypeObject *)cls, id);
}

static PyObject *
identity_from_str(PyObject *cls, PyObject *arg)
{
    sbx_identity *id = NULL;
    const char *s = PyUnicode_AsUTF8(arg);
    if (s == NULL)
        return NULL;
    int err = sbx_identity_parse(&id, s);
    if (err < 0)
        return raise_sbx(IdentityError, err);
    return identity_wrap((PyTypeObject *)cls, id);
}

/* see module.h */
int
fixed_passphrase(sbx_buf *out, void *payload)
{
    Py_buffer *pw = payload;
    if (pw == NULL || pw->buf == NULL)
        return sbx_error_set(SBX_ENOKEY, "the key is protected by a passphrase: pass it "
                                         "(passphrase=, or pphr= for SecFile)");
    return sbx_buf_append(out, pw->buf, (size_t)pw->len);
}

/*
 * A list of Python objects from a C array of n keys (the array is freed; the
 * keys are owned by the new objects, or freed on failure).
 */
static PyObject *
wrap_list(void **items, size_t n, PyTypeObject *cls, PyObject *(*wrap)(PyTypeObject *, void *),
          void (*free_one)(void *))
{
    PyObject *res = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; i < n; i++) {
        PyObject *o = res != NULL ? wrap(cls, items[i]) : NULL; // wrap frees on failure
        if (o == NULL) {
            for (size_t j = i + (res == NULL ? 0 : 1); j < n; j++)
                free_one(items[j]);
            Py_CLEAR(res);
            break;
        }
        PyList_SET_ITEM(res, (Py_ssize_t)i, o);
    }
    free(items);
    return res;
}

static PyObject *
identity_wrap_any(PyTypeObject *cls, void *id)
{
    return identity_wrap(cls, id);
}

static void
identity_free_any(void *id)
{
    sbx_identity_free(id);
}

/* Parse identity text; returns a list of instances of cls. */
static PyObject *
identities_from_text(PyTypeObject *cls, const char *text, size_t len, Py_buffer *pw)
{
    sbx_identity **list = NULL;
    size_t n = 0;
    int err = sbx_identities_parse_ex(&list, &n, text, len, fixed_passphrase, pw);
    if (err < 0)
        return raise_sbx(err == SBX_EAUTH ? PassphraseError : IdentityError, err);
    return wrap_list((void **)list, n, cls, identity_wrap_any, identity_free_any);
}

static PyObject *
identity_from_buffer(PyObject *cls, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"buffer", "passphrase", NULL};
    Py_buffer b, pw = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|y*:from_buffer", kwlist, &b, &pw))
        return NULL;
    PyObject *list = identities_from_text((PyTypeObject *)cls, b.buf, (size_t)b.len,
                                          pw.buf != NULL ? &pw : NULL);
    PyBuffer_Release(&b);
    if (pw.buf != NULL)
        PyBuffer_Release(&pw);
    if (list == NULL)
        return NULL;
    if (PyList_GET_SIZE(list) != 1) {
        Py_DECREF(list);
        PyErr_SetString(IdentityError, "the buffer holds more than one key; use load_identities()");
        return NULL;
    }
    PyObject *id = PyList_GET_ITEM(list, 0);
    Py_INCREF(id);
    Py_DECREF(list);
    return id;
}

static PyObject *
identity_str(IdentityObject *self)
{
    sbx_buf b = SBX_BUF_INIT;
    int err = sbx_identity_to_string(self->id, &b);
    if (err < 0)
        return raise_sbx(IdentityError, err);
    PyObject *s = PyUnicode_FromStringAndSize((const char *)b.ptr, (Py_ssize_t)b.len);
    sbx_buf_dispose(&b);
    return s;
}

static PyObject *
identity_repr(IdentityObject *self)
{
    return PyUnicode_FromFormat("<%s (secret)>", Py_TYPE(self)->tp_name);
}

static PyObject *
identity_to_public(IdentityObject *self, PyObject *unused)
{
    sbx_recipient *r = NULL;
    (void)unused;
    int err = sbx_identity_to_recipient(&r, self->id);
    if (err < 0)
        return raise_sbx(IdentityError, err);
    PyObject *cls = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "_recipient_class");
    if (cls == NULL) {
        PyErr_Clear();
        cls = (PyObject *)&RecipientType;
        Py_INCREF(cls);
    }
    PyObject *o = recipient_wrap((PyTypeObject *)cls, r);
    Py_DECREF(cls);
    return o;
}

static PyMethodDef identity_methods[] = {
    {"generate", (PyCFunction)identity_generate, METH_NOARGS | METH_CLASS,
     "generate() -> Identity\n\nA new X25519 identity."},
    {"from_str", (PyCFunction)identity_from_str, METH_O | METH_CLASS,
     "from_str(s) -> Identity\n\nParse 'AGE-SECRET-KEY-1...'. Raises IdentityError."},
    {"from_buffer", (PyCFunction)(void (*)(void))identity_from_buffer,
     METH_VARARGS | METH_KEYWORDS | METH_CLASS,
     "from_buffer(buffer, passphrase=None) -> Identity\n\nOne SSH or PEM private key (OpenSSH, "
     "PKCS#1, PKCS#8; passphrase for protected PEM keys). Raises IdentityError."},
    {"to_public", (PyCFunction)identity_to_public, METH_NOARGS,
     "to_public() -> Recipient\n\nThe matching recipient."},
    {NULL, NULL, 0, NULL}};

PyTypeObject IdentityType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "strongbox.Identity",
    .tp_basicsize = sizeof(IdentityObject),
    .tp_dealloc = (destructor)identity_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "What decrypts a file (a secret key, kept in locked memory). str() gives the "
              "secret string.",
    .tp_methods = identity_methods,
    .tp_str = (reprfunc)identity_str,
    .tp_repr = (reprfunc)identity_repr,
};

static PyObject *
m_parse_identities(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"text", "passphrase", NULL};
    Py_buffer b, pw = {0};
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|y*", kwlist, &b, &pw))
        return NULL;
    PyObject *r =
        identities_from_text(&IdentityType, b.buf, (size_t)b.len, pw.buf != NULL ? &pw : NULL);
    PyBuffer_Release(&b);
    if (pw.buf != NULL)
        PyBuffer_Release(&pw);
    return r;
}

static PyObject *
recipient_wrap_any(PyTypeObject *cls, void *r)
{
    return recipient_wrap(cls, r);
}

static void
recipient_free_any(void *r)
{
    sbx_recipient_free(r);
}

static PyObject *
m_parse_recipients(PyObject *self, PyObject *arg)
{
    Py_buffer b;
    sbx_recipient **list = NULL;
    size_t n = 0;
    (void)self;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    int err = sbx_recipients_parse(&list, &n, b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    if (err < 0)
        return raise_sbx(RecipientError, err);
    return wrap_list((void **)list, n, &RecipientType, recipient_wrap_any, recipient_free_any);
}

/* ---- key lists ---- */

/* Borrowed pointers of a sequence of Recipient (or Identity) objects; keep seq alive. */
static int
collect(PyObject *seq, PyTypeObject *type, void ***out, size_t *n, const char *what)
{
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    *out = NULL;
    *n = 0;
    if (len == 0) {
        PyErr_Format(PyExc_ValueError, "no %ss given", what);
        return -1;
    }
    void **p = PyMem_Calloc((size_t)len, sizeof(void *));
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyObject_TypeCheck(o, type)) {
            PyErr_Format(PyExc_TypeError, "%s %zd is a %s, not a strongbox %s", what, i,
                         Py_TYPE(o)->tp_name, what);
            PyMem_Free(p);
            return -1;
        }
        p[i] = type == &RecipientType ? (void *)((RecipientObject *)o)->r
                                      : (void *)((IdentityObject *)o)->id;
    }
    *out = p;
    *n = (size_t)len;
    return 0;
}

/* see module.h */
int
keylist_get(keylist *k, PyObject *obj, PyTypeObject *type, const char *what)
{
    k->ptrs = NULL;
    if (PyObject_TypeCheck(obj, type)) // one key is accepted where a list is expected
        k->seq = PyTuple_Pack(1, obj);
    else
        k->seq = PySequence_Fast(obj, "expected a list of keys");
    if (k->seq == NULL)
        return -1;
    if (collect(k->seq, type, &k->ptrs, &k->n, what) < 0) {
        Py_CLEAR(k->seq);
        return -1;
    }
    return 0;
}

/* see module.h */
void
keylist_release(keylist *k)
{
    PyMem_Free(k->ptrs);
    Py_CLEAR(k->seq);
}

/* ---- one-shot encrypt / decrypt ---- */

static PyObject *
encrypt_with(Py_buffer *data, sbx_recipient *const *r, size_t n, int armored)
{
    sbx_age_encrypt_options o = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    sbx_buf out = SBX_BUF_INIT;
    int err;
    o.armor = armored != 0;
    Py_BEGIN_ALLOW_THREADS err = sbx_age_encrypt_buf(&out, data->buf, (size_t)data->len, r, n, &o);
    Py_END_ALLOW_THREADS if (err < 0)
    {
        sbx_buf_dispose(&out);
        return raise_sbx(err == SBX_EINVAL ? RecipientError : EncryptError, err);
    }
    return bytes_from_buf(&out);
}

static PyObject *
decrypt_with(Py_buffer *data, sbx_identity *const *ids, size_t n, PyObject *nomatch)
{
    sbx_buf out = SBX_BUF_INIT;
    int err;
    Py_BEGIN_ALLOW_THREADS err =
        sbx_age_decrypt_buf(&out, data->buf, (size_t)data->len, ids, n, NULL);
    Py_END_ALLOW_THREADS if (err < 0)
    {
        sbx_buf_dispose(&out); // all or nothing: no unconfirmed plaintext
        return raise_sbx(err == SBX_ENOMATCH ? nomatch : DecryptError, err);
    }
    return bytes_from_buf(&out);
}

static PyObject *
m_encrypt(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"data", "recipients", "armored", NULL};
    Py_buffer data;
    PyObject *recips;
    int armored = 0;
    keylist k;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*O|p:encrypt", kwlist, &data, &recips, &armored))
        return NULL;
    PyObject *r = NULL;
    if (keylist_get(&k, recips, &RecipientType, "recipient") == 0) {
        r = encrypt_with(&data, (sbx_recipient *const *)k.ptrs, k.n, armored);
        keylist_release(&k);
    }
    PyBuffer_Release(&data);
    return r;
}

static PyObject *
m_decrypt(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"data", "identities", NULL};
    Py_buffer data;
    PyObject *ids;
    keylist k;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*O:decrypt", kwlist, &data, &ids))
        return NULL;
    PyObject *r = NULL;
    if (keylist_get(&k, ids, &IdentityType, "identity") == 0) {
        r = decrypt_with(&data, (sbx_identity *const *)k.ptrs, k.n, DecryptError);
        keylist_release(&k);
    }
    PyBuffer_Release(&data);
    return r;
}

static PyObject *
m_passphrase_encrypt(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"data", "passphrase", "armored", "work_factor", NULL};
    Py_buffer data;
    const char *pw;
    Py_ssize_t pwlen;
    int armored = 0, log_n = 0;
    sbx_recipient *r = NULL;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*s#|pi:encrypt", kwlist, &data, &pw, &pwlen,
                                     &armored, &log_n))
        return NULL;
    PyObject *res = NULL;
    int err = sbx_recipient_scrypt_new(&r, pw, (size_t)pwlen, log_n);
    if (err < 0)
        raise_sbx(PassphraseError, err);
    else
        res = encrypt_with(&data, &r, 1, armored);
    sbx_recipient_free(r);
    PyBuffer_Release(&data);
    return res;
}

static PyObject *
m_passphrase_decrypt(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"data", "passphrase", "max_work_factor", NULL};
    Py_buffer data;
    const char *pw;
    Py_ssize_t pwlen;
    int max_log_n = 0;
    sbx_identity *id = NULL;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*s#|i:decrypt", kwlist, &data, &pw, &pwlen,
                                     &max_log_n))
        return NULL;
    PyObject *res = NULL;
    int err = sbx_identity_scrypt_new(&id, pw, (size_t)pwlen, max_log_n);
    if (err < 0)
        raise_sbx(PassphraseError, err);
    else
        res = decrypt_with(&data, &id, 1, PassphraseError);
    sbx_identity_free(id);
    PyBuffer_Release(&data);
    return res;
}

static PyObject *
m_passphrase_recipient(PyObject *self, PyObject *args)
{
    const char *pw;
    Py_ssize_t len;
    int log_n = 0;
    sbx_recipient *r = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "s#|i", &pw, &len, &log_n))
        return NULL;
    int err = sbx_recipient_scrypt_new(&r, pw, (size_t)len, log_n);
    if (err < 0)
        return raise_sbx(PassphraseError, err);
    return recipient_wrap(&RecipientType, r);
}

static PyObject *
m_passphrase_identity(PyObject *self, PyObject *args)
{
    const char *pw;
    Py_ssize_t len;
    int max_log_n = 0;
    sbx_identity *id = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "s#|i", &pw, &len, &max_log_n))
        return NULL;
    int err = sbx_identity_scrypt_new(&id, pw, (size_t)len, max_log_n);
    if (err < 0)
        return raise_sbx(PassphraseError, err);
    return identity_wrap(&IdentityType, id);
}

/* ---- files by path ---- */

static PyObject *
m_encrypt_file(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"infile", "outfile", "recipients", "armored", NULL};
    PyObject *inb = NULL, *outb = NULL, *recips;
    int armored = 0, err = 0;
    keylist k;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O|p:encrypt_file", kwlist,
                                     PyUnicode_FSConverter, &inb, PyUnicode_FSConverter, &outb,
                                     &recips, &armored))
        goto out;
    if (keylist_get(&k, recips, &RecipientType, "recipient") < 0)
        goto out;
    const char *in = PyBytes_AS_STRING(inb), *outp = PyBytes_AS_STRING(outb);
    sbx_age_encrypt_options o = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    o.armor = armored != 0;
    Py_BEGIN_ALLOW_THREADS sbx_source *src = NULL;
    sbx_sink *file = NULL, *enc = NULL;
    if ((err = sbx_source_file_new(&src, in)) == 0 &&
        (err = sbx_sink_atomic_file_new(&file, outp, 0666)) == 0 &&
        (err = sbx_age_encryptor_new(&enc, file, (sbx_recipient *const *)k.ptrs, k.n, &o)) == 0)
        err = sbx_stream_copy(enc, src, NULL);
    sbx_sink_free(enc);
    sbx_sink_free(file);
    sbx_source_free(src);
    Py_END_ALLOW_THREADS keylist_release(&k);
    if (err < 0)
        raise_sbx(err == SBX_EINVAL ? RecipientError : EncryptError, err);
out:
    Py_XDECREF(inb);
    Py_XDECREF(outb);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
m_decrypt_file(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"infile", "outfile", "identities", NULL};
    PyObject *inb = NULL, *outb = NULL, *ids;
    int err = 0;
    keylist k;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&O&O:decrypt_file", kwlist, PyUnicode_FSConverter,
                                     &inb, PyUnicode_FSConverter, &outb, &ids))
        goto out;
    if (keylist_get(&k, ids, &IdentityType, "identity") < 0)
        goto out;
    const char *in = PyBytes_AS_STRING(inb), *outp = PyBytes_AS_STRING(outb);
    Py_BEGIN_ALLOW_THREADS sbx_source *src = NULL, *dec = NULL;
    sbx_sink *file = NULL;
    if ((err = sbx_source_file_new(&src, in)) == 0 &&
        (err = sbx_age_decryptor_new(&dec, src, (sbx_identity *const *)k.ptrs, k.n, NULL)) == 0 &&
        (err = sbx_sink_atomic_file_new(&file, outp, 0600)) == 0)
        err = sbx_stream_copy(file, dec, NULL); // a failure removes the partial output
    sbx_sink_free(file);
    sbx_source_free(dec);
    sbx_source_free(src);
    Py_END_ALLOW_THREADS keylist_release(&k);
    if (err < 0)
        raise_sbx(DecryptError, err);
out:
    Py_XDECREF(inb);
    Py_XDECREF(outb);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* ---- Python file objects as sinks and sources ---- */

/* An exception raised by a Python callback, kept until the GIL holder re-raises it. */
typedef struct {
    PyObject *type, *value, *tb;
} saved_exc;

static void
exc_save(saved_exc *s)
{
    if (s->type == NULL)
        PyErr_Fetch(&s->type, &s->value, &s->tb);
    else
        PyErr_Clear();
}

/* Re-raise a saved exception (with the GIL); true if there was one. */
static bool
exc_restore(saved_exc *s)
{
    if (s->type == NULL)
        return false;
    PyErr_Restore(s->type, s->value, s->tb);
    s->type = s->value = s->tb = NULL;
    return true;
}

static void
exc_clear(saved_exc *s)
{
    Py_CLEAR(s->type);
    Py_CLEAR(s->value);
    Py_CLEAR(s->tb);
}

struct pysink {
    sbx_sink base;
    PyObject *file;
    saved_exc *exc;
};

static int
pysink_write(sbx_sink *self, const uint8_t *buf, size_t len)
{
    struct pysink *s = (struct pysink *)self;
    int err = 0;
    PyGILState_STATE g = PyGILState_Ensure();
    while (len > 0) {
        PyObject *mv = PyMemoryView_FromMemory((char *)buf, (Py_ssize_t)len, PyBUF_READ);
        PyObject *r = mv != NULL ? PyObject_CallMethod(s->file, "write", "O", mv) : NULL;
        Py_XDECREF(mv);
        Py_ssize_t n = r == NULL ? -1 : r == Py_None ? (Py_ssize_t)len : PyLong_AsSsize_t(r);
        Py_XDECREF(r);
        if (n < 0 || (size_t)n > len) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_OSError, "the file object's write() returned a bad count");
            exc_save(s->exc);
            err = sbx_error_set(SBX_EIO, "writing to the Python file object failed");
            break;
        }
        buf += n, len -= (size_t)n;
    }
    PyGILState_Release(g);
    return err;
}

static int
pysink_finish(sbx_sink *self)
{
    (void)self;
    return 0;
}

static void
pysink_free(sbx_sink *self)
{
    PyMem_RawFree(self);
}

static sbx_sink *
pysink_new(PyObject *file, saved_exc *exc)
{
    struct pysink *s = PyMem_RawCalloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->base.write = pysink_write;
    s->base.finish = pysink_finish;
    s->base.free = pysink_free;
    s->file = file; // borrowed: the owner keeps a reference
    s->exc = exc;
    return &s->base;
}

struct pysource {
    sbx_source base;
    PyObject *file;
    saved_exc *exc;
};

static int
pysource_read(sbx_source *self, uint8_t *buf, size_t len, size_t *nread)
{
    struct pysource *s = (struct pysource *)self;
    int err = 0;
    *nread = 0;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *mv = PyMemoryView_FromMemory((char *)buf, (Py_ssize_t)len, PyBUF_WRITE);
    PyObject *r = mv != NULL ? PyObject_CallMethod(s->file, "readinto", "O", mv) : NULL;
    Py_ssize_t n = r == NULL || r == Py_None ? -1 : PyLong_AsSsize_t(r);
    if (mv != NULL)
        PyObject_CallMethod(mv, "release", NULL) == NULL ? PyErr_Clear() : (void)0;
    Py_XDECREF(mv);
    Py_XDECREF(r);
    if (n < 0 || (size_t)n > len) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_OSError,
                            "the file object's readinto() returned None or a bad count (a "
                            "non-blocking file is not supported)");
        exc_save(s->exc);
        err = sbx_error_set(SBX_EIO, "reading from the Python file object failed");
    } else {
        *nread = (size_t)n;
    }
    PyGILState_Release(g);
    return err;
}

static void
pysource_free(sbx_source *self)
{
    PyMem_RawFree(self);
}

static sbx_source *
pysource_new(PyObject *file, saved_exc *exc)
{
    struct pysource *s = PyMem_RawCalloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->base.read = pysource_read;
    s->base.free = pysource_free;
    s->file = file;
    s->exc = exc;
    return &s->base;
}

/* ---- Writer: an age encryptor over a path or a file object ---- */

typedef struct {
    PyObject_HEAD sbx_sink *bottom, *enc;
    PyObject *file;
    saved_exc exc;
    PyThread_type_lock lock;
    bool done;
} WriterObject;

static void
writer_release(WriterObject *self)
{
    sbx_sink_free(self->enc); // an unfinished atomic file is removed
    sbx_sink_free(self->bottom);
    self->enc = self->bottom = NULL;
    self->done = true;
}

static void
writer_dealloc(WriterObject *self)
{
    writer_release(self);
    Py_CLEAR(self->file);
    exc_clear(&self->exc);
    if (self->lock != NULL)
        PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
writer_init(WriterObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"target", "recipients", "armored", NULL};
    PyObject *target, *recips;
    int armored = 0, err;
    keylist k;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|p", kwlist, &target, &recips, &armored))
        return -1;
    if (self->lock != NULL || self->enc != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Writer already initialised");
        return -1;
    }
    if ((self->lock = PyThread_allocate_lock()) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (keylist_get(&k, recips, &RecipientType, "recipient") < 0)
        return -1;
    if (PyUnicode_Check(target) || PyBytes_Check(target) ||
        PyObject_HasAttrString(target, "__fspath__")) {
        PyObject *pb = NULL;
        if (!PyUnicode_FSConverter(target, &pb)) {
            keylist_release(&k);
            return -1;
        }
        err = sbx_sink_atomic_file_new(&self->bottom, PyBytes_AS_STRING(pb), 0666);
        Py_DECREF(pb);
    } else {
        Py_INCREF(target);
        self->file = target;
        self->bottom = pysink_new(target, &self->exc);
        err = self->bottom == NULL ? sbx_error_set_nomem() : 0;
    }
    sbx_age_encrypt_options o = SBX_AGE_ENCRYPT_OPTIONS_INIT;
    o.armor = armored != 0;
    if (err == 0) {
        Py_BEGIN_ALLOW_THREADS err = sbx_age_encryptor_new(&self->enc, self->bottom,
                                                           (sbx_recipient *const *)k.ptrs, k.n, &o);
        Py_END_ALLOW_THREADS
    }
    keylist_release(&k);
    if (err < 0) {
        writer_release(self);
        if (!exc_restore(&self->exc))
            raise_sbx(err == SBX_EINVAL ? RecipientError : EncryptError, err);
        return -1;
    }
    return 0;
}

static bool
writer_usable(WriterObject *self)
{
    if (self->enc == NULL) {
        PyErr_SetString(PyExc_ValueError, "I/O operation on a closed or failed strongbox writer");
        return false;
    }
    return true;
}

static PyObject *
writer_write(WriterObject *self, PyObject *arg)
{
    Py_buffer b;
    int err;
    if (!writer_usable(self) || PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    err = sbx_sink_write(self->enc, b.buf, (size_t)b.len);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS Py_ssize_t n = b.len;
    PyBuffer_Release(&b);
    if (err < 0) {
        writer_release(self);
        if (!exc_restore(&self->exc))
            raise_sbx(EncryptError, err);
        return NULL;
    }
    return PyLong_FromSsize_t(n);
}

static PyObject *
writer_finish(WriterObject *self, PyObject *unused)
{
    int err;
    (void)unused;
    if (self->done && self->enc == NULL)
        Py_RETURN_NONE;
    if (!writer_usable(self))
        return NULL;
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    err = sbx_sink_finish(self->enc);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS writer_release(self);
    if (err < 0) {
        if (!exc_restore(&self->exc))
            raise_sbx(EncryptError, err);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
writer_abort(WriterObject *self, PyObject *unused)
{
    (void)unused;
    writer_release(self);
    Py_RETURN_NONE;
}

static PyMethodDef writer_methods[] = {
    {"write", (PyCFunction)writer_write, METH_O, "write(b) -> int: encrypt and write b."},
    {"finish", (PyCFunction)writer_finish, METH_NOARGS,
     "finish(): write the last chunk; commit the file (a path) atomically."},
    {"abort", (PyCFunction)writer_abort, METH_NOARGS,
     "abort(): discard: a path target is left untouched."},
    {NULL, NULL, 0, NULL}};

static PyTypeObject WriterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "strongbox._strongbox.Writer",
    .tp_basicsize = sizeof(WriterObject),
    .tp_dealloc = (destructor)writer_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Low-level age encryptor (use strongbox.open(file, 'wb', recipients=...)).",
    .tp_methods = writer_methods,
    .tp_init = (initproc)writer_init,
    .tp_new = PyType_GenericNew,
};

/* ---- Reader: an age decryptor; random access on a regular file ---- */

typedef struct {
    PyObject_HEAD sbx_source *bottom, *dec;
    sbx_age_reader *ra; // random access, opened on the first seek
    PyObject *file, *ids;
    saved_exc exc;
    PyThread_type_lock lock;
    int fd;        // a regular file we can pread, or -1
    bool close_fd; // fd is ours
    uint64_t pos;  // plaintext position
    bool eof;
} ReaderObject;

static void
reader_release(ReaderObject *self)
{
    sbx_source_free(self->dec);
    sbx_source_free(self->bottom);
    sbx_age_reader_free(self->ra);
    self->dec = self->bottom = NULL;
    self->ra = NULL;
    if (self->close_fd && self->fd >= 0)
        close(self->fd);
    self->fd = -1;
}

static void
reader_dealloc(ReaderObject *self)
{
    reader_release(self);
    Py_CLEAR(self->file);
    Py_CLEAR(self->ids);
    exc_clear(&self->exc);
    if (self->lock != NULL)
        PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
reader_open_source(ReaderObject *self, PyObject *src)
{
    if (PyUnicode_Check(src) || PyBytes_Check(src) || PyObject_HasAttrString(src, "__fspath__")) {
        PyObject *pb = NULL;
        if (!PyUnicode_FSConverter(src, &pb))
            return -1;
        self->fd = open(PyBytes_AS_STRING(pb), O_RDONLY | O_CLOEXEC);
        if (self->fd < 0) {
            PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, src);
            Py_DECREF(pb);
            return -1;
        }
        Py_DECREF(pb);
        self->close_fd = true;
        return sbx_source_fd_new(&self->bottom, self->fd, false) < 0 ? (PyErr_NoMemory(), -1) : 0;
    }
    Py_INCREF(src);
    self->file = src;
    if ((self->bottom = pysource_new(src, &self->exc)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int
reader_init(ReaderObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"source", "identities", "fd", NULL};
    PyObject *src, *ids;
    int fd = -1, err;
    keylist k;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|i", kwlist, &src, &ids, &fd))
        return -1;
    if (self->lock != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Reader already initialised");
        return -1;
    }
    self->fd = -1;
    if ((self->lock = PyThread_allocate_lock()) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (keylist_get(&k, ids, &IdentityType, "identity") < 0)
        return -1;
    if (reader_open_source(self, src) < 0) {
        keylist_release(&k);
        return -1;
    }
    if (fd >= 0 && self->fd < 0)
        self->fd = fd; // the file object's own descriptor, for random access (borrowed)
    Py_BEGIN_ALLOW_THREADS err =
        sbx_age_decryptor_new(&self->dec, self->bottom, (sbx_identity *const *)k.ptrs, k.n, NULL);
    Py_END_ALLOW_THREADS self->ids = k.seq; // kept for random access
    k.seq = NULL;
    keylist_release(&k);
    if (err < 0) {
        reader_release(self);
        if (!exc_restore(&self->exc))
            raise_sbx(DecryptError, err);
        return -1;
    }
    return 0;
}

static bool
reader_usable(ReaderObject *self)
{
    if (self->dec == NULL && self->ra == NULL) {
        PyErr_SetString(PyExc_ValueError, "I/O operation on a closed or failed strongbox reader");
        return false;
    }
    return true;
}

static PyObject *
reader_readinto(ReaderObject *self, PyObject *arg)
{
    Py_buffer b;
    size_t got = 0;
    int err;
    if (!reader_usable(self) || PyObject_GetBuffer(arg, &b, PyBUF_WRITABLE) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    if (self->ra != NULL)
        err = sbx_age_reader_pread(self->ra, b.buf, (size_t)b.len, self->pos, &got);
    else
        err = sbx_source_read_full(self->dec, b.buf, (size_t)b.len, &got);
    if (err == 0)
        self->pos += got;
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS if (err < 0)
    {
        memset(b.buf, 0, (size_t)b.len);
        PyBuffer_Release(&b);
        reader_release(self);
        if (!exc_restore(&self->exc))
            raise_sbx(DecryptError, err);
        return NULL;
    }
    PyBuffer_Release(&b);
    return PyLong_FromSize_t(got);
}

/* Switch to random access (sbx_age_reader over the descriptor). */
static int
reader_random_access(ReaderObject *self)
{
    keylist k;
    int err;
    if (self->ra != NULL)
        return 0;
    if (self->fd < 0) {
        PyObject *io = PyImport_ImportModule("io");
        PyObject *cls = io != NULL ? PyObject_GetAttrString(io, "UnsupportedOperation") : NULL;
        if (cls != NULL)
            PyErr_SetString(cls, "seek needs a path or a binary file with fileno()");
        Py_XDECREF(cls);
        Py_XDECREF(io);
        return -1;
    }
    if (keylist_get(&k, self->ids, &IdentityType, "identity") < 0)
        return -1;
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    err = sbx_age_reader_open(&self->ra, self->fd, (sbx_identity *const *)k.ptrs, k.n);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS keylist_release(&k);
    if (err < 0) {
        raise_sbx(DecryptError, err);
        return -1;
    }
    sbx_source_free(self->dec);
    self->dec = NULL;
    return 0;
}

static PyObject *
reader_seek(ReaderObject *self, PyObject *args)
{
    long long off;
    int whence = 0, err = 0;
    uint64_t size = 0;
    if (!PyArg_ParseTuple(args, "L|i", &off, &whence) || !reader_usable(self))
        return NULL;
    if (whence == 1 && off == 0)
        return PyLong_FromUnsignedLongLong(self->pos);
    if (reader_random_access(self) < 0)
        return NULL;
    if (whence == 2) {
        Py_BEGIN_ALLOW_THREADS err = sbx_age_reader_size(self->ra, &size);
        Py_END_ALLOW_THREADS if (err < 0) return raise_sbx(DecryptError, err);
    }
    long long base = whence == 0 ? 0 : whence == 1 ? (long long)self->pos : (long long)size;
    if (whence < 0 || whence > 2 || base + off < 0) {
        PyErr_SetString(PyExc_ValueError, "negative seek position or bad whence");
        return NULL;
    }
    self->pos = (uint64_t)(base + off);
    return PyLong_FromUnsignedLongLong(self->pos);
}

static PyObject *
reader_tell(ReaderObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLongLong(self->pos);
}

static PyObject *
reader_seekable(ReaderObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->fd >= 0);
}

static PyObject *
reader_close(ReaderObject *self, PyObject *unused)
{
    (void)unused;
    reader_release(self);
    Py_RETURN_NONE;
}

static PyMethodDef reader_methods[] = {
    {"readinto", (PyCFunction)reader_readinto, METH_O,
     "readinto(b) -> int: verified plaintext into b; 0 at the end."},
    {"seek", (PyCFunction)reader_seek, METH_VARARGS, "seek(offset, whence=0) -> int"},
    {"tell", (PyCFunction)reader_tell, METH_NOARGS, "tell() -> int"},
    {"seekable", (PyCFunction)reader_seekable, METH_NOARGS, "seekable() -> bool"},
    {"close", (PyCFunction)reader_close, METH_NOARGS, "close()"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "strongbox._strongbox.Reader",
    .tp_basicsize = sizeof(ReaderObject),
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Low-level age decryptor (use strongbox.open(file, 'rb', identities=...)).",
    .tp_methods = reader_methods,
    .tp_init = (initproc)reader_init,
    .tp_new = PyType_GenericNew,
};

/* ---- TmpFD: the descriptor-level encrypted temporary file ---- */

typedef struct {
    PyObject_HEAD sbx_tmpfd *t;
    PyThread_type_lock lock;
} TmpFDObject;

static void
tmpfd_dealloc(TmpFDObject *self)
{
    sbx_tmpfd_free(self->t);
    if (self->lock != NULL)
        PyThread_free_lock(self->lock);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
tmpfd_init(TmpFDObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"key_size", "dir", "block_size", NULL};
    int key_size = 32, err;
    Py_ssize_t block = 0;
    PyObject *dir = Py_None, *dirb = NULL;
    struct sbx_tmpfile_options o = SBX_TMPFILE_OPTIONS_INIT;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|iOn", kwlist, &key_size, &dir, &block))
        return -1;
    if (self->t != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "TmpFD already initialised");
        return -1;
    }
    if (key_size != 16 && key_size != 24 && key_size != 32) {
        PyErr_Format(PyExc_ValueError, "key_size must be 16, 24 or 32 bytes, not %d", key_size);
        return -1;
    }
    o.cipher = key_size == 16   ? SBX_TMPFILE_AES_128_GCM
               : key_size == 24 ? SBX_TMPFILE_AES_192_GCM
                                : SBX_TMPFILE_AES_256_GCM;
    o.block_size = (size_t)block;
    if (dir != Py_None) {
        if (!PyUnicode_FSConverter(dir, &dirb))
            return -1;
        o.dir = PyBytes_AS_STRING(dirb);
    }
    if ((self->lock = PyThread_allocate_lock()) == NULL) {
        Py_XDECREF(dirb);
        PyErr_NoMemory();
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS err = sbx_tmpfd_new(&self->t, &o);
    Py_END_ALLOW_THREADS Py_XDECREF(dirb);
    if (err < 0) {
        if (err == SBX_EIO) {
            errno = sbx_error_last()->sys_errno ? sbx_error_last()->sys_errno : EIO;
            PyErr_Format(PyExc_OSError, "%s", sbx_error_last()->message);
            return -1;
        }
        raise_sbx(Error, err);
        return -1;
    }
    return 0;
}

static bool
tmpfd_open(TmpFDObject *self)
{
    if (self->t == NULL) {
        PyErr_SetString(PyExc_ValueError, "I/O operation on closed file");
        return false;
    }
    return true;
}

/* Raise for a tmpfd failure: a tampered block is DecryptError, disk errors OSError. */
static PyObject *
tmpfd_raise(int err)
{
    const sbx_error *e = sbx_error_last();
    if (err == SBX_EIO) {
        PyObject *args = Py_BuildValue("is", e->sys_errno ? e->sys_errno : EIO, e->message);
        if (args != NULL)
            PyErr_SetObject(PyExc_OSError, args);
        Py_XDECREF(args);
        return NULL;
    }
    if (err == SBX_ETOOBIG) {
        PyObject *args = Py_BuildValue("is", EFBIG, e->message);
        if (args != NULL)
            PyErr_SetObject(PyExc_OSError, args);
        Py_XDECREF(args);
        return NULL;
    }
    return raise_sbx(err == SBX_EAUTH ? DecryptError : Error, err);
}

static PyObject *
tmpfd_preadinto(TmpFDObject *self, PyObject *args)
{
    Py_buffer b;
    unsigned long long off;
    size_t got = 0;
    int err;
    if (!tmpfd_open(self) || !PyArg_ParseTuple(args, "w*K", &b, &off))
        return NULL;
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    err = sbx_tmpfd_pread(self->t, b.buf, (size_t)b.len, off, &got);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS PyBuffer_Release(&b);
    if (err < 0)
        return tmpfd_raise(err);
    return PyLong_FromSize_t(got);
}

static PyObject *
tmpfd_pwrite(TmpFDObject *self, PyObject *args)
{
    Py_buffer b;
    unsigned long long off;
    size_t done = 0;
    int err;
    if (!tmpfd_open(self) || !PyArg_ParseTuple(args, "y*K", &b, &off))
        return NULL;
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    err = sbx_tmpfd_pwrite(self->t, b.buf, (size_t)b.len, off, &done);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS PyBuffer_Release(&b);
    if (err < 0 && done == 0)
        return tmpfd_raise(err);
    return PyLong_FromSize_t(done);
}

static PyObject *
tmpfd_truncate(TmpFDObject *self, PyObject *arg)
{
    unsigned long long size = PyLong_AsUnsignedLongLong(arg);
    int err;
    if (PyErr_Occurred() || !tmpfd_open(self))
        return NULL;
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    err = sbx_tmpfd_truncate(self->t, size);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS if (err < 0) return tmpfd_raise(err);
    Py_RETURN_NONE;
}

static PyObject *
tmpfd_flush(TmpFDObject *self, PyObject *unused)
{
    int err;
    (void)unused;
    if (!tmpfd_open(self))
        return NULL;
    Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
    err = sbx_tmpfd_flush(self->t);
    PyThread_release_lock(self->lock);
    Py_END_ALLOW_THREADS if (err < 0) return tmpfd_raise(err);
    Py_RETURN_NONE;
}

static PyObject *
tmpfd_size(TmpFDObject *self, PyObject *unused)
{
    (void)unused;
    if (!tmpfd_open(self))
        return NULL;
    return PyLong_FromUnsignedLongLong(sbx_tmpfd_size(self->t));
}

static PyObject *
tmpfd_fileno(TmpFDObject *self, PyObject *unused)
{
    (void)unused;
    if (!tmpfd_open(self))
        return NULL;
    return PyLong_FromLong(sbx_tmpfd_fd(self->t));
}

static PyObject *
tmpfd_disk_offset(TmpFDObject *self, PyObject *arg)
{
    unsigned long long off = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred() || !tmpfd_open(self))
        return NULL;
    return PyLong_FromUnsignedLongLong(sbx_tmpfd_disk_offset(self->t, off));
}

static PyObject *
tmpfd_close(TmpFDObject *self, PyObject *unused)
{
    (void)unused;
    sbx_tmpfd *t = self->t;
    self->t = NULL;
    if (t != NULL) {
        Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
        sbx_tmpfd_free(t);
        PyThread_release_lock(self->lock);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *
tmpfd_closed_get(TmpFDObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->t == NULL);
}

static PyMethodDef tmpfd_methods[] = {
    {"preadinto", (PyCFunction)tmpfd_preadinto, METH_VARARGS,
     "preadinto(buffer, offset) -> int: plaintext at offset (short only at the end)."},
    {"pwrite", (PyCFunction)tmpfd_pwrite, METH_VARARGS, "pwrite(data, offset) -> int"},
    {"truncate", (PyCFunction)tmpfd_truncate, METH_O, "truncate(size): shrink or grow."},
    {"flush", (PyCFunction)tmpfd_flush, METH_NOARGS, "flush(): cached blocks to disk."},
    {"size", (PyCFunction)tmpfd_size, METH_NOARGS, "size() -> int: the plaintext size."},
    {"fileno", (PyCFunction)tmpfd_fileno, METH_NOARGS,
     "fileno() -> int: the real descriptor (its bytes are ciphertext)."},
    {"disk_offset", (PyCFunction)tmpfd_disk_offset, METH_O,
     "disk_offset(offset) -> int: where the block holding offset starts on disk."},
    {"close", (PyCFunction)tmpfd_close, METH_NOARGS, "close(): wipe the key, drop the file."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef tmpfd_getset[] = {{"closed", (getter)tmpfd_closed_get, NULL, NULL, NULL},
                                     {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject TmpFDType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "strongbox._strongbox.TmpFD",
    .tp_basicsize = sizeof(TmpFDObject),
    .tp_dealloc = (destructor)tmpfd_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "sbx_tmpfd: an encrypted temporary file with pread/pwrite (use "
              "strongbox.TemporaryFile).",
    .tp_methods = tmpfd_methods,
    .tp_getset = tmpfd_getset,
    .tp_init = (initproc)tmpfd_init,
    .tp_new = PyType_GenericNew,
};

/* ---- module ---- */

static PyObject *
m_strerror(PyObject *self, PyObject *arg)
{
    (void)self;
    long code = PyLong_AsLong(arg);
    if (PyErr_Occurred())
        return NULL;
    return Py_BuildValue("ss", sbx_error_name((int)code), sbx_strerror((int)code));
}

/* ---- Secret: bytes kept in locked memory ---- */

typedef struct {
    PyObject_HEAD uint8_t *p;
    size_t len;
} SecretObject;

static void
secret_dealloc(SecretObject *self)
{
    sbx_secret_free(self->p, self->len ? self->len : 1);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
secret_init(SecretObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"data", NULL};
    Py_buffer b;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*", kwlist, &b))
        return -1;
    sbx_secret_free(self->p, self->len ? self->len : 1);
    self->len = (size_t)b.len;
    self->p = sbx_secret_alloc(self->len ? self->len : 1);
    if (self->p == NULL) {
        PyBuffer_Release(&b);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(self->p, b.buf, self->len);
    PyBuffer_Release(&b);
    return 0;
}

static PyObject *
secret_reveal(SecretObject *self, PyObject *unused)
{
    (void)unused;
    return PyBytes_FromStringAndSize((const char *)self->p, (Py_ssize_t)self->len);
}

static PyObject *
secret_locked(SecretObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(self->p != NULL && sbx_secret_is_locked(self->p));
}

static Py_ssize_t
secret_len(SecretObject *self)
{
    return (Py_ssize_t)self->len;
}

static PySequenceMethods secret_seq = {.sq_length = (lenfunc)secret_len};

static PyMethodDef secret_methods[] = {
    {"reveal", (PyCFunction)secret_reveal, METH_NOARGS, "reveal() -> bytes: a copy of the secret"},
    {"is_locked", (PyCFunction)secret_locked, METH_NOARGS,
     "is_locked() -> bool: whether the bytes live in the locked secure heap"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject SecretType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "strongbox._strongbox.Secret",
    .tp_basicsize = sizeof(SecretObject),
    .tp_dealloc = (destructor)secret_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Bytes in the OpenSSL secure heap (locked, not in core dumps), wiped when freed.",
    .tp_methods = secret_methods,
    .tp_as_sequence = &secret_seq,
    .tp_init = (initproc)secret_init,
    .tp_new = PyType_GenericNew,
};

/* ---- sealed values: AES-256-GCM, random nonce (strongbox.kms facilities) ---- */

#define SEAL_MAGIC     "sbxs1:"
#define SEAL_MAGIC_LEN 6

static int
key32(Py_buffer *k)
{
    if (k->len != 32) {
        PyErr_SetString(PyExc_ValueError, "the key must be 32 bytes");
        return -1;
    }
    return 0;
}

static PyObject *
m_seal(PyObject *self, PyObject *args)
{
    Py_buffer key, data, aad = {0};
    int err;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*|y*", &key, &data, &aad))
        return NULL;
    PyObject *out = NULL;
    if (key32(&key) == 0 &&
        (out = PyBytes_FromStringAndSize(NULL, SEAL_MAGIC_LEN + 12 + data.len + 16)) != NULL) {
        uint8_t *o = (uint8_t *)PyBytes_AS_STRING(out);
        sbx_aead_part part = {aad.buf, aad.buf ? (size_t)aad.len : 0};
        memcpy(o, SEAL_MAGIC, SEAL_MAGIC_LEN);
        Py_BEGIN_ALLOW_THREADS err = sbx_random_bytes(o + SEAL_MAGIC_LEN, 12);
        if (err == 0)
            err = sbx_aead_gcm_seal(o + SEAL_MAGIC_LEN + 12, o + SEAL_MAGIC_LEN + 12 + data.len,
                                    key.buf, o + SEAL_MAGIC_LEN, &part, 1, data.buf,
                                    (size_t)data.len);
        Py_END_ALLOW_THREADS if (err < 0)
        {
            Py_CLEAR(out);
            raise_sbx(EncryptError, err);
        }
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    if (aad.buf != NULL)
        PyBuffer_Release(&aad);
    return out;
}

static PyObject *
m_open_sealed(PyObject *self, PyObject *args)
{
    Py_buffer key, blob, aad = {0};
    int err;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*|y*", &key, &blob, &aad))
        return NULL;
    PyObject *out = NULL;
    const uint8_t *b = blob.buf;
    if (key32(&key) < 0) {
    } else if (blob.len < SEAL_MAGIC_LEN + 28 || memcmp(b, SEAL_MAGIC, SEAL_MAGIC_LEN) != 0) {
        PyErr_SetString(FormatError, "not a value sealed by strongbox (sbxs1:)");
    } else if ((out = PyBytes_FromStringAndSize(NULL, blob.len - SEAL_MAGIC_LEN - 28)) != NULL) {
        size_t n = (size_t)blob.len - SEAL_MAGIC_LEN - 28;
        sbx_aead_part part = {aad.buf, aad.buf ? (size_t)aad.len : 0};
        Py_BEGIN_ALLOW_THREADS err =
            sbx_aead_gcm_open((uint8_t *)PyBytes_AS_STRING(out), key.buf, b + SEAL_MAGIC_LEN, &part,
                              1, b + SEAL_MAGIC_LEN + 12, n, b + SEAL_MAGIC_LEN + 12 + n);
        Py_END_ALLOW_THREADS if (err < 0)
        {
            Py_CLEAR(out);
            raise_sbx(DecryptError, err);
        }
    }
    PyBuffer_Release(&key);
    PyBuffer_Release(&blob);
    if (aad.buf != NULL)
        PyBuffer_Release(&aad);
    return out;
}

static PyObject *
m_stanza_type_registered(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL)
        return NULL;
    return PyBool_FromLong(sbx_age_stanza_type_find(name) != NULL);
}

static PyMethodDef module_methods[] = {
    {"seal", m_seal, METH_VARARGS,
     "seal(key32, data, aad=b'') -> bytes: 'sbxs1:' || nonce || AES-256-GCM ciphertext || tag"},
    {"open_sealed", m_open_sealed, METH_VARARGS, "open_sealed(key32, blob, aad=b'') -> bytes"},
    SECFILE_METHODS{
        "stanza_type_registered", m_stanza_type_registered, METH_O,
        "stanza_type_registered(type) -> bool: whether this copy of libstrongbox knows the "
        "stanza type (built in, or registered by strongbox.kms)."},
    {"encrypt", (PyCFunction)(void (*)(void))m_encrypt, METH_VARARGS | METH_KEYWORDS,
     "encrypt(data, recipients, armored=False) -> bytes"},
    {"decrypt", (PyCFunction)(void (*)(void))m_decrypt, METH_VARARGS | METH_KEYWORDS,
     "decrypt(data, identities) -> bytes"},
    {"passphrase_encrypt", (PyCFunction)(void (*)(void))m_passphrase_encrypt,
     METH_VARARGS | METH_KEYWORDS, "passphrase_encrypt(data, passphrase, armored, work_factor)"},
    {"passphrase_decrypt", (PyCFunction)(void (*)(void))m_passphrase_decrypt,
     METH_VARARGS | METH_KEYWORDS, "passphrase_decrypt(data, passphrase, max_work_factor)"},
    {"passphrase_recipient", m_passphrase_recipient, METH_VARARGS,
     "passphrase_recipient(passphrase, work_factor=0) -> Recipient"},
    {"passphrase_identity", m_passphrase_identity, METH_VARARGS,
     "passphrase_identity(passphrase, max_work_factor=0) -> Identity"},
    {"encrypt_file", (PyCFunction)(void (*)(void))m_encrypt_file, METH_VARARGS | METH_KEYWORDS,
     "encrypt_file(infile, outfile, recipients, armored=False)"},
    {"decrypt_file", (PyCFunction)(void (*)(void))m_decrypt_file, METH_VARARGS | METH_KEYWORDS,
     "decrypt_file(infile, outfile, identities)"},
    {"parse_identities", (PyCFunction)(void (*)(void))m_parse_identities,
     METH_VARARGS | METH_KEYWORDS, "parse_identities(text, passphrase=None) -> [Identity]"},
    {"parse_recipients", m_parse_recipients, METH_O,
     "parse_recipients(text) -> [Recipient]: a recipients file (age1/ssh lines, PEM public keys)"},
    {"raise_error", m_raise_error, METH_VARARGS, "raise_error(cls, code): for tests"},
    {"strerror", m_strerror, METH_O, "strerror(code) -> (name, description)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "strongbox._strongbox",
                                        "The C core of strongbox (libstrongbox).", -1,
                                        module_methods};

static PyObject *
new_error(PyObject *m, const char *name, PyObject *base, const char *doc)
{
    char full[64];
    snprintf(full, sizeof full, "strongbox.%s", name);
    PyObject *e = PyErr_NewExceptionWithDoc(full, doc, base, NULL);
    if (e == NULL || PyModule_AddObject(m, name, e) < 0)
        return NULL;
    Py_INCREF(e); // PyModule_AddObject stole one
    return e;
}

static int
add_type(PyObject *m, const char *name, PyTypeObject *t)
{
    if (PyType_Ready(t) < 0)
        return -1;
    Py_INCREF(t);
    if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
        Py_DECREF(t);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC
PyInit__strongbox(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    (void)sbx_init(); // the secure heap before the process grows; unlocked is reported elsewhere
    if ((Error = new_error(m, "Error", PyExc_Exception,
                           "Base class of every strongbox error (attributes code, code_name).")) ==
            NULL ||
        (EncryptError = new_error(m, "EncryptError", Error, "Encryption failed.")) == NULL ||
        (DecryptError = new_error(m, "DecryptError", Error,
                                  "Decryption failed: wrong key, tampered or truncated data.")) ==
            NULL ||
        (RecipientError = new_error(m, "RecipientError", Error, "A bad recipient (public key).")) ==
            NULL ||
        (IdentityError = new_error(m, "IdentityError", Error, "A bad identity (secret key).")) ==
            NULL ||
        (FormatError = new_error(m, "FormatError", DecryptError,
                                 "The input is not a well-formed file of the expected format.")) ==
            NULL ||
        (PassphraseError = new_error(m, "PassphraseError", DecryptError,
                                     "A wrong or missing passphrase.")) == NULL ||
        (KmsError = new_error(m, "KmsError", Error, "The key server refused or failed.")) == NULL ||
        add_type(m, "Recipient", &RecipientType) < 0 ||
        add_type(m, "Identity", &IdentityType) < 0 || add_type(m, "Writer", &WriterType) < 0 ||
        add_type(m, "Reader", &ReaderType) < 0 || add_type(m, "TmpFD", &TmpFDType) < 0 ||
        add_type(m, "Secret", &SecretType) < 0 ||
        PyModule_AddStringConstant(m, "LIBRARY_VERSION", SBX_VERSION_STRING) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
