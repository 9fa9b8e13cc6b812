/*
 * python/src/_kms.c - strongbox._kms, the key-server client for Python over
 * libstrongbox-kms (libcurl, jansson, libssl).
 *
 * Implementation notes
 *
 * One copy of the library: this module is linked with libstrongbox-kms's
 * objects only. Every libstrongbox function it needs (errors, secure memory,
 * the stanza registry...) is resolved when it is loaded, from
 * strongbox._strongbox, which strongbox.kms first re-opens with RTLD_GLOBAL.
 * The sbx-kms stanza type that the constructor in src/kms/register.c
 * registers therefore lands in the core's registry, and key-server
 * recipients and identities made here are ordinary strongbox.Recipient /
 * strongbox.Identity instances (objects.h) that strongbox.encrypt,
 * strongbox.decrypt and strongbox.open accept.
 *
 * Client owns an sbx_kms_client (thread-safe) and, on first use, an
 * sbx_kms_cache (thread-safe, locked memory). Every network call releases
 * the GIL. Secrets (data keys, plaintext) are copied into bytes objects and
 * the library's copies wiped.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "strongbox/error.h"
#include "strongbox/kms.h"
#include "strongbox/memory.h"

#include "objects.h"

static PyObject *KmsError, *RaiseError, *RecipientType, *IdentityType;

/* KmsError with the library's message: the core's raise_error, the same error state. */
static PyObject *
raise_kms(int code)
{
    PyObject *r = PyObject_CallFunction(RaiseError, "Oi", KmsError, code);
    Py_XDECREF(r); // raise_error always raises
    return NULL;
}

typedef struct {
    PyObject_HEAD sbx_kms_client *c;
    sbx_kms_cache *cache;
    char *url, *cacert, *fingerprint;
    char *token; // secure memory
    size_t token_len;
} ClientObject;

static void
client_dealloc(ClientObject *self)
{
    sbx_kms_cache_free(self->cache);
    sbx_kms_client_free(self->c);
    PyMem_Free(self->url);
    PyMem_Free(self->cacert);
    PyMem_Free(self->fingerprint);
    sbx_secret_free(self->token, self->token_len);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static char *
dup_or_null(const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = PyMem_Malloc(strlen(s) + 1);
    if (d != NULL)
        strcpy(d, s);
    return d;
}

static int
client_init(ClientObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"url", "token", "cacert", "fingerprint", "timeout_ms", NULL};
    const char *url, *token = NULL, *cacert = NULL, *fp = NULL;
    unsigned timeout = 0;
    int err;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "s|zzzI", kwlist, &url, &token, &cacert, &fp,
                                     &timeout))
        return -1;
    if (self->c != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Client already initialised");
        return -1;
    }
    sbx_kms_client_options o = SBX_KMS_CLIENT_OPTIONS_INIT;
    o.token = token;
    o.cacert = cacert;
    o.fingerprint = fp;
    if (timeout > 0)
        o.timeout_ms = timeout;
    Py_BEGIN_ALLOW_THREADS err = sbx_kms_client_new_from_env(&self->c, url, &o);
    Py_END_ALLOW_THREADS if (err < 0)
    {
        raise_kms(err);
        return -1;
    }
    // For identities: the same server, credentials and trust (the env's if not given).
    if (token == NULL)
        token = getenv("SBX_KMS_TOKEN");
    if (cacert == NULL)
        cacert = getenv("SBX_KMS_CACERT");
    if (fp == NULL)
        fp = getenv("SBX_KMS_FINGERPRINT");
    self->url = dup_or_null(url);
    self->cacert = dup_or_null(cacert);
    self->fingerprint = dup_or_null(fp);
    if (token != NULL) {
        self->token_len = strlen(token) + 1;
        if ((self->token = sbx_secret_alloc(self->token_len)) != NULL)
            memcpy(self->token, token, self->token_len);
    }
    if (self->url == NULL || (cacert && !self->cacert) || (fp && !self->fingerprint) ||
        (token && !self->token)) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* An encryption context dict -> pairs (strings borrowed from the dict's items). */
typedef struct {
    sbx_kms_pair *pairs;
    size_t n;
    PyObject *items;
} context;

static int
context_get(context *ctx, PyObject *obj)
{
    ctx->pairs = NULL;
    ctx->n = 0;
    ctx->items = NULL;
    if (obj == NULL || obj == Py_None)
        return 0;
    if (!PyDict_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "context must be a dict of str to str");
        return -1;
    }
    if ((ctx->items = PyDict_Items(obj)) == NULL)
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(ctx->items);
    ctx->pairs = PyMem_Calloc((size_t)n + 1, sizeof *ctx->pairs);
    if (ctx->pairs == NULL) {
        Py_CLEAR(ctx->items);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *kv = PyList_GET_ITEM(ctx->items, i);
        const char *k = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kv, 0));
        const char *v = k != NULL ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(kv, 1)) : NULL;
        if (v == NULL) {
            PyMem_Free(ctx->pairs);
            Py_CLEAR(ctx->items);
            return -1;
        }
        ctx->pairs[i].key = k;
        ctx->pairs[i].value = v;
    }
    ctx->n = (size_t)n;
    return 0;
}

static void
context_release(context *ctx)
{
    PyMem_Free(ctx->pairs);
    Py_CLEAR(ctx->items);
}

static PyObject *
str_from_buf(sbx_buf *b)
{
    size_t len = b->len;
    while (len > 0 && b->ptr[len - 1] == '\0')
        len--;
    PyObject *s = PyUnicode_FromStringAndSize((const char *)b->ptr, (Py_ssize_t)len);
    sbx_buf_dispose(b);
    return s;
}

enum key_op { KEY_CREATE, KEY_ROTATE, KEY_READ };

/* create_key(name, period=0), rotate_key(name), read_key(name): the metadata JSON. */
static PyObject *
client_key_op(ClientObject *self, PyObject *args, enum key_op op)
{
    const char *name;
    unsigned long long period = 0;
    sbx_buf meta = SBX_BUF_INIT;
    int err;
    if (!PyArg_ParseTuple(args, op == KEY_CREATE ? "s|K" : "s", &name, &period))
        return NULL;
    Py_BEGIN_ALLOW_THREADS;
    err = op == KEY_CREATE   ? sbx_kms_key_create(self->c, name, period, &meta)
          : op == KEY_ROTATE ? sbx_kms_key_rotate(self->c, name, &meta)
                             : sbx_kms_key_read(self->c, name, &meta);
    Py_END_ALLOW_THREADS;
    if (err < 0) {
        sbx_buf_dispose(&meta);
        return raise_kms(err);
    }
    return str_from_buf(&meta);
}

static PyObject *
client_create_key(ClientObject *self, PyObject *args)
{
    return client_key_op(self, args, KEY_CREATE);
}

static PyObject *
client_rotate_key(ClientObject *self, PyObject *args)
{
    return client_key_op(self, args, KEY_ROTATE);
}

static PyObject *
client_read_key(ClientObject *self, PyObject *args)
{
    return client_key_op(self, args, KEY_READ);
}

static PyObject *
client_datakey(ClientObject *self, PyObject *args)
{
    const char *name;
    PyObject *ctxobj = Py_None;
    unsigned bits = 256;
    context ctx;
    sbx_kms_datakey dk = {0};
    int err;
    if (!PyArg_ParseTuple(args, "s|OI", &name, &ctxobj, &bits) || context_get(&ctx, ctxobj) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS err =
        sbx_kms_datakey_new(self->c, name, ctx.pairs, ctx.n, bits, false, &dk);
    Py_END_ALLOW_THREADS context_release(&ctx);
    if (err < 0)
        return raise_kms(err);
    PyObject *r = Py_BuildValue("y#sI", dk.plaintext, (Py_ssize_t)dk.plaintext_len, dk.ciphertext,
                                dk.key_version);
    sbx_kms_datakey_dispose(&dk);
    return r;
}

static PyObject *
client_encrypt(ClientObject *self, PyObject *args)
{
    const char *name;
    Py_buffer data;
    PyObject *ctxobj = Py_None;
    context ctx;
    sbx_buf out = SBX_BUF_INIT;
    unsigned version = 0;
    int err;
    if (!PyArg_ParseTuple(args, "sy*|O", &name, &data, &ctxobj))
        return NULL;
    if (context_get(&ctx, ctxobj) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS err = sbx_kms_encrypt(self->c, name, data.buf, (size_t)data.len,
                                                 ctx.pairs, ctx.n, &out, &version);
    Py_END_ALLOW_THREADS context_release(&ctx);
    PyBuffer_Release(&data);
    if (err < 0) {
        sbx_buf_dispose(&out);
        return raise_kms(err);
    }
    PyObject *s = str_from_buf(&out);
    return s == NULL ? NULL : Py_BuildValue("NI", s, version);
}

/* decrypt and rewrap: ciphertext in, bytes (decrypt) or str (rewrap) out. */
static PyObject *
client_unwrap(ClientObject *self, PyObject *args, bool rewrap)
{
    const char *name, *ct;
    PyObject *ctxobj = Py_None;
    context ctx;
    sbx_buf out = SBX_BUF_INIT;
    unsigned version = 0;
    int err;
    if (!PyArg_ParseTuple(args, "ss|O", &name, &ct, &ctxobj) || context_get(&ctx, ctxobj) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS if (rewrap) err =
        sbx_kms_rewrap(self->c, name, ct, ctx.pairs, ctx.n, &out, &version);
    else err = sbx_kms_decrypt(self->c, name, ct, ctx.pairs, ctx.n, &out, &version);
    Py_END_ALLOW_THREADS context_release(&ctx);
    if (err < 0) {
        sbx_buf_dispose(&out);
        return raise_kms(err);
    }
    PyObject *r;
    if (rewrap) {
        r = str_from_buf(&out);
    } else {
        r = PyBytes_FromStringAndSize((const char *)out.ptr, (Py_ssize_t)out.len);
        sbx_buf_dispose(&out);
    }
    return r == NULL ? NULL : Py_BuildValue("NI", r, version);
}

static PyObject *
client_decrypt(ClientObject *self, PyObject *args)
{
    return client_unwrap(self, args, false);
}

static PyObject *
client_rewrap(ClientObject *self, PyObject *args)
{
    return client_unwrap(self, args, true);
}

static PyObject *
client_request(ClientObject *self, PyObject *args)
{
    const char *method, *path, *body = NULL;
    int idempotent = 0, err;
    long status = 0;
    sbx_buf out = SBX_BUF_INIT;
    if (!PyArg_ParseTuple(args, "ss|zp", &method, &path, &body, &idempotent))
        return NULL;
    Py_BEGIN_ALLOW_THREADS err =
        sbx_kms_request(self->c, method, path, body, idempotent != 0, &status, &out);
    Py_END_ALLOW_THREADS if (err < 0 && status == 0)
    {
        sbx_buf_dispose(&out);
        return raise_kms(err);
    }
    PyObject *r = Py_BuildValue("ly#", status, out.ptr, (Py_ssize_t)out.len);
    sbx_buf_dispose(&out);
    return r;
}

static int
cache_ready(ClientObject *self)
{
    int err = 0;
    if (self->cache == NULL && (err = sbx_kms_cache_new(&self->cache, self->c, NULL)) < 0) {
        raise_kms(err);
        return -1;
    }
    return 0;
}

static PyObject *
client_cached_datakey(ClientObject *self, PyObject *args)
{
    const char *name;
    PyObject *ctxobj = Py_None;
    unsigned long long nbytes = 0;
    context ctx;
    sbx_kms_datakey dk = {0};
    int err;
    if (!PyArg_ParseTuple(args, "s|OK", &name, &ctxobj, &nbytes) || cache_ready(self) < 0 ||
        context_get(&ctx, ctxobj) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS err =
        sbx_kms_cache_datakey(self->cache, name, ctx.pairs, ctx.n, nbytes, &dk);
    Py_END_ALLOW_THREADS context_release(&ctx);
    if (err < 0)
        return raise_kms(err);
    PyObject *r = Py_BuildValue("y#sI", dk.plaintext, (Py_ssize_t)dk.plaintext_len, dk.ciphertext,
                                dk.key_version);
    sbx_kms_datakey_dispose(&dk);
    return r;
}

static PyObject *
client_cached_decrypt(ClientObject *self, PyObject *args)
{
    const char *name, *ct;
    PyObject *ctxobj = Py_None;
    context ctx;
    uint8_t key[64];
    size_t len = 0;
    int err;
    if (!PyArg_ParseTuple(args, "ss|O", &name, &ct, &ctxobj) || cache_ready(self) < 0 ||
        context_get(&ctx, ctxobj) < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS err =
        sbx_kms_cache_decrypt(self->cache, name, ct, ctx.pairs, ctx.n, key, &len);
    Py_END_ALLOW_THREADS context_release(&ctx);
    if (err < 0)
        return raise_kms(err);
    PyObject *r = PyBytes_FromStringAndSize((const char *)key, (Py_ssize_t)len);
    sbx_wipe(key, sizeof key);
    return r;
}

static PyObject *
client_cache_stats(ClientObject *self, PyObject *unused)
{
    sbx_kms_cache_stats st = {0};
    (void)unused;
    if (self->cache != NULL)
        sbx_kms_cache_get_stats(self->cache, &st);
    return Py_BuildValue("{sKsKsKsKsn}", "hits", (unsigned long long)st.hits, "misses",
                         (unsigned long long)st.misses, "evictions",
                         (unsigned long long)st.evictions, "expirations",
                         (unsigned long long)st.expirations, "entries", (Py_ssize_t)st.entries);
}

static PyObject *
client_recipient(ClientObject *self, PyObject *args)
{
    PyObject *cls;
    const char *key_url;
    sbx_recipient *r = NULL;
    if (!PyArg_ParseTuple(args, "Os", &cls, &key_url))
        return NULL;
    if (!PyType_Check(cls) ||
        !PyType_IsSubtype((PyTypeObject *)cls, (PyTypeObject *)RecipientType)) {
        PyErr_SetString(PyExc_TypeError, "cls must be a strongbox.Recipient subclass");
        return NULL;
    }
    int err = sbx_recipient_kms_new(&r, self->c, key_url);
    if (err < 0)
        return raise_kms(err);
    RecipientObject *o = (RecipientObject *)((PyTypeObject *)cls)->tp_alloc((PyTypeObject *)cls, 0);
    if (o == NULL) {
        sbx_recipient_free(r);
        return NULL;
    }
    o->r = r; // borrows the client: the Python wrapper keeps a reference to it
    return (PyObject *)o;
}

static PyObject *
client_identity(ClientObject *self, PyObject *unused)
{
    sbx_identity *id = NULL;
    const char *urls[1] = {self->url};
    (void)unused;
    sbx_kms_client_options o = SBX_KMS_CLIENT_OPTIONS_INIT;
    o.urls = urls;
    o.url_count = 1;
    o.token = self->token;
    o.cacert = self->cacert;
    o.fingerprint = self->fingerprint;
    int err = sbx_identity_kms_new(&id, &o);
    if (err < 0)
        return raise_kms(err);
    PyTypeObject *t = (PyTypeObject *)IdentityType;
    IdentityObject *obj = (IdentityObject *)t->tp_alloc(t, 0);
    if (obj == NULL) {
        sbx_identity_free(id);
        return NULL;
    }
    obj->id = id;
    return (PyObject *)obj;
}

static PyMethodDef client_methods[] = {
    {"create_key", (PyCFunction)client_create_key, METH_VARARGS, "create_key(name, period=0)"},
    {"rotate_key", (PyCFunction)client_rotate_key, METH_VARARGS, "rotate_key(name)"},
    {"read_key", (PyCFunction)client_read_key, METH_VARARGS, "read_key(name)"},
    {"datakey", (PyCFunction)client_datakey, METH_VARARGS, "datakey(name, context, bits)"},
    {"encrypt", (PyCFunction)client_encrypt, METH_VARARGS, "encrypt(name, data, context)"},
    {"decrypt", (PyCFunction)client_decrypt, METH_VARARGS, "decrypt(name, ct, context)"},
    {"rewrap", (PyCFunction)client_rewrap, METH_VARARGS, "rewrap(name, ct, context)"},
    {"request", (PyCFunction)client_request, METH_VARARGS,
     "request(method, path, body=None, idempotent=False) -> (status, body)"},
    {"cached_datakey", (PyCFunction)client_cached_datakey, METH_VARARGS,
     "cached_datakey(name, context, nbytes)"},
    {"cached_decrypt", (PyCFunction)client_cached_decrypt, METH_VARARGS,
     "cached_decrypt(name, ct, context)"},
    {"cache_stats", (PyCFunction)client_cache_stats, METH_NOARGS, "cache_stats() -> dict"},
    {"recipient", (PyCFunction)client_recipient, METH_VARARGS, "recipient(cls, key_url)"},
    {"identity", (PyCFunction)client_identity, METH_NOARGS, "identity() -> Identity"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject ClientType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "strongbox._kms.Client",
    .tp_basicsize = sizeof(ClientObject),
    .tp_dealloc = (destructor)client_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Low-level key-server client (use strongbox.kms.Client).",
    .tp_methods = client_methods,
    .tp_init = (initproc)client_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "strongbox._kms",
                                        "The key-server client (libstrongbox-kms).", -1, NULL};

PyMODINIT_FUNC
PyInit__kms(void)
{
    PyObject *core = PyImport_ImportModule("strongbox._strongbox");
    if (core == NULL)
        return NULL;
    KmsError = PyObject_GetAttrString(core, "KmsError");
    RaiseError = PyObject_GetAttrString(core, "raise_error");
    RecipientType = PyObject_GetAttrString(core, "Recipient");
    IdentityType = PyObject_GetAttrString(core, "Identity");
    Py_DECREF(core);
    if (KmsError == NULL || RaiseError == NULL || RecipientType == NULL || IdentityType == NULL ||
        PyType_Ready(&ClientType) < 0)
        return NULL;
    sbx_kms_init(); // the sbx-kms stanza type, into the core's registry
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    Py_INCREF(&ClientType);
    if (PyModule_AddObject(m, "Client", (PyObject *)&ClientType) < 0) {
        Py_DECREF(&ClientType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
