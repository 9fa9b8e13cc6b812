/*
 * python/src/secfile.c - the library calls behind strongbox.SecFile
 * (pyFileSec's workflow on age files): seal/unseal with metadata, rotate,
 * pyFileSec padding, destroy, PEM signatures, and reading old pyFileSec /
 * opensslwrap archives for migrate(). Each releases the GIL for the work and
 * returns plain Python values; the policy (names, keep, what to return)
 * lives in strongbox/_secfile.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "strongbox/strongbox.h"

#include "module.h"

static PyObject *
none_ref(void)
{
    Py_INCREF(Py_None);
    return Py_None;
}

static PyObject *
path_arg(PyObject *o)
{
    PyObject *b = NULL;
    return PyUnicode_FSConverter(o, &b) ? b : NULL;
}

static PyObject *
hex32(const uint8_t d[32])
{
    char s[65];
    for (int i = 0; i < 32; i++)
        snprintf(s + 2 * i, 3, "%02x", d[i]);
    return PyUnicode_FromString(s);
}

static PyObject *
meta_dict(const sbx_seal_meta *m)
{
    PyObject *rec = PyList_New(0), *hist = PyList_New(0);
    for (size_t i = 0; rec != NULL && i < m->nrecipients; i++) {
        PyObject *s = PyUnicode_FromString(m->recipients[i]);
        if (s == NULL || PyList_Append(rec, s) < 0)
            Py_CLEAR(rec);
        Py_XDECREF(s);
    }
    for (size_t i = 0; hist != NULL && i < m->nhistory; i++) {
        PyObject *s =
            PyUnicode_DecodeUTF8(m->history[i], (Py_ssize_t)strlen(m->history[i]), "replace");
        if (s == NULL || PyList_Append(hist, s) < 0)
            Py_CLEAR(hist);
        Py_XDECREF(s);
    }
    if (rec == NULL || hist == NULL) {
        Py_XDECREF(rec);
        Py_XDECREF(hist);
        return NULL;
    }
    return Py_BuildValue("{sssKsLsssNsN}", "name", m->name, "size", (unsigned long long)m->size,
                         "mtime", (long long)m->mtime, "tool", m->tool, "recipients", rec,
                         "history", hist);
}

static PyObject *
destroy_dict(const sbx_destroy_report *d)
{
    return Py_BuildValue("{sKsKsIsssisisOsOsOsd}", "size", (unsigned long long)d->size,
                         "bytes_overwritten", (unsigned long long)d->bytes_overwritten, "passes",
                         d->passes, "fs_type", d->fs_type, "rotational", d->rotational, "discard",
                         d->discard, "overwritten", d->overwritten ? Py_True : Py_False, "unlinked",
                         d->unlinked ? Py_True : Py_False, "reliable",
                         d->reliable ? Py_True : Py_False, "seconds", d->seconds);
}

PyObject *
sf_seal(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "recipients", "keep", "meta", "note", "passes", NULL};
    PyObject *p, *recips, *pb;
    int keep = 0, meta = 1, err;
    const char *note = NULL;
    unsigned passes = 1;
    keylist k;
    sbx_seal_report rep;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|ppzI", kwlist, &p, &recips, &keep, &meta, &note,
                                     &passes) ||
        (pb = path_arg(p)) == NULL)
        return NULL;
    if (keylist_get(&k, recips, &RecipientType, "recipient") < 0) {
        Py_DECREF(pb);
        return NULL;
    }
    sbx_seal_options o = SBX_SEAL_OPTIONS_INIT;
    o.keep = keep != 0;
    o.meta = meta != 0;
    o.note = note;
    o.passes = passes;
    Py_BEGIN_ALLOW_THREADS err =
        sbx_seal_file(&rep, PyBytes_AS_STRING(pb), (sbx_recipient *const *)k.ptrs, k.n, &o);
    Py_END_ALLOW_THREADS keylist_release(&k);
    Py_DECREF(pb);
    if (err < 0)
        return raise_sbx(err == SBX_EINVAL ? RecipientError : EncryptError, err);
    return Py_BuildValue("{sssKsNsOsOsN}", "output", rep.output, "size",
                         (unsigned long long)rep.size, "sha256", hex32(rep.sha256), "destroyed",
                         rep.destroyed ? Py_True : Py_False, "meta", rep.meta ? Py_True : Py_False,
                         "destroy", rep.destroyed ? destroy_dict(&rep.destroy) : none_ref());
}

PyObject *
sf_unseal(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"path", "identities", "keep", "output", "force", NULL};
    PyObject *p, *ids, *pb, *out = Py_None, *ob = NULL;
    int keep = 0, force = 0, err;
    keylist k;
    sbx_unseal_report rep;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|pOp", kwlist, &p, &ids, &keep, &out, &force) ||
        (pb = path_arg(p)) == NULL)
        return NULL;
    if ((out != Py_None && (ob = path_arg(out)) == NULL) ||
        keylist_get(&k, ids, &IdentityType, "identity") < 0) {
        Py_DECREF(pb);
        Py_XDECREF(ob);
        return NULL;
    }
    sbx_unseal_options o = SBX_UNSEAL_OPTIONS_INIT;
    o.keep = keep != 0;
    o.force = force != 0;
    o.output = ob != NULL ? PyBytes_AS_STRING(ob) : NULL;
    Py_BEGIN_ALLOW_THREADS err =
        sbx_unseal_file(&rep, PyBytes_AS_STRING(pb), (sbx_identity *const *)k.ptrs, k.n, &o);
    Py_END_ALLOW_THREADS keylist_release(&k);
    Py_DECREF(pb);
    Py_XDECREF(ob);
    if (err < 0)
        return raise_sbx(DecryptError, err);
    return Py_BuildValue("{sssKsNsOsN}", "output", rep.output, "size", (unsigned long long)rep.size,
                         "sha256", hex32(rep.sha256), "removed", rep.removed ? Py_True : Py_False,
                         "meta", rep.has_meta ? meta_dict(&rep.meta) : none_ref());
}

PyObject *
sf_meta(PyObject *self, PyObject *args)
{
    PyObject *p, *ids, *pb;
    keylist k;
    sbx_seal_meta m;
    bool found = false;
    int err;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &p, &ids) || (pb = path_arg(p)) == NULL)
        return NULL;
    if (keylist_get(&k, ids, &IdentityType, "identity") < 0) {
        Py_DECREF(pb);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS err =
        sbx_seal_meta_read(&m, &found, PyBytes_AS_STRING(pb), (sbx_identity *const *)k.ptrs, k.n);
    Py_END_ALLOW_THREADS keylist_release(&k);
    Py_DECREF(pb);
    if (err < 0)
        return raise_sbx(DecryptError, err);
    if (!found)
        Py_RETURN_NONE;
    return meta_dict(&m);
}

PyObject *
sf_rotate(PyObject *self, PyObject *args)
{
    PyObject *p, *ids, *recips, *pb;
    int rekey = 0, err = 0;
    keylist ki, kr;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOO|p", &p, &ids, &recips, &rekey) || (pb = path_arg(p)) == NULL)
        return NULL;
    if (keylist_get(&ki, ids, &IdentityType, "identity") < 0) {
        Py_DECREF(pb);
        return NULL;
    }
    if (keylist_get(&kr, recips, &RecipientType, "recipient") < 0) {
        keylist_release(&ki);
        Py_DECREF(pb);
        return NULL;
    }
    sbx_rotate_options o = SBX_ROTATE_OPTIONS_INIT;
    o.rekey = rekey != 0;
    Py_BEGIN_ALLOW_THREADS err =
        sbx_rotate_file(PyBytes_AS_STRING(pb), NULL, (sbx_identity *const *)ki.ptrs, ki.n,
                        (sbx_recipient *const *)kr.ptrs, kr.n, &o, NULL);
    Py_END_ALLOW_THREADS keylist_release(&ki);
    keylist_release(&kr);
    Py_DECREF(pb);
    if (err < 0)
        return raise_sbx(err == SBX_EINVAL ? RecipientError : DecryptError, err);
    Py_RETURN_NONE;
}

PyObject *
sf_pad(PyObject *self, PyObject *args)
{
    PyObject *p, *pb;
    unsigned long long size;
    uint64_t got = 0;
    int err;
    (void)self;
    if (!PyArg_ParseTuple(args, "OK", &p, &size) || (pb = path_arg(p)) == NULL)
        return NULL;
    Py_BEGIN_ALLOW_THREADS err =
        sbx_pad_pfs_file(PyBytes_AS_STRING(pb), PyBytes_AS_STRING(pb), size, &got);
    Py_END_ALLOW_THREADS Py_DECREF(pb);
    if (err < 0)
        return raise_sbx(err == SBX_ETOOBIG || err == SBX_EINVAL ? PyExc_ValueError : Error, err);
    return PyLong_FromUnsignedLongLong(got);
}

PyObject *
sf_unpad(PyObject *self, PyObject *args)
{
    PyObject *p, *pb;
    int strict = 0, err;
    uint64_t removed = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "O|p", &p, &strict) || (pb = path_arg(p)) == NULL)
        return NULL;
    Py_BEGIN_ALLOW_THREADS err =
        sbx_pad_pfs_unpad_file(PyBytes_AS_STRING(pb), PyBytes_AS_STRING(pb), strict != 0, &removed);
    Py_END_ALLOW_THREADS Py_DECREF(pb);
    if (err < 0)
        return raise_sbx(err == SBX_EFORMAT ? FormatError : Error, err);
    return PyLong_FromUnsignedLongLong(removed);
}

PyObject *
sf_destroy(PyObject *self, PyObject *args)
{
    PyObject *p, *pb;
    unsigned passes = 1;
    int force = 0, err;
    sbx_destroy_report rep;
    (void)self;
    if (!PyArg_ParseTuple(args, "O|Ip", &p, &passes, &force) || (pb = path_arg(p)) == NULL)
        return NULL;
    sbx_destroy_options o = SBX_DESTROY_OPTIONS_INIT;
    o.passes = passes;
    o.force = force != 0;
    Py_BEGIN_ALLOW_THREADS err = sbx_destroy(&rep, PyBytes_AS_STRING(pb), &o);
    Py_END_ALLOW_THREADS Py_DECREF(pb);
    if (err < 0)
        return raise_sbx(Error, err);
    return destroy_dict(&rep);
}

/* pem_sign(path, key_pem, passphrase=None) -> signature bytes */
PyObject *
sf_sign(PyObject *self, PyObject *args)
{
    PyObject *p, *pb;
    Py_buffer pem, pw = {0};
    sbx_pem_key *key = NULL;
    sbx_source *src = NULL;
    sbx_buf sig = SBX_BUF_INIT;
    int err;
    (void)self;
    if (!PyArg_ParseTuple(args, "Oy*|y*", &p, &pem, &pw))
        return NULL;
    if ((pb = path_arg(p)) == NULL) {
        PyBuffer_Release(&pem);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS err = sbx_pem_key_parse_private(
        &key, pem.buf, (size_t)pem.len, fixed_passphrase, pw.buf != NULL ? &pw : NULL);
    if (err == 0 && (err = sbx_source_file_new(&src, PyBytes_AS_STRING(pb))) == 0)
        err = sbx_pem_sign(&sig, key, src);
    sbx_source_free(src);
    sbx_pem_key_free(key);
    Py_END_ALLOW_THREADS PyBuffer_Release(&pem);
    if (pw.buf != NULL)
        PyBuffer_Release(&pw);
    Py_DECREF(pb);
    if (err < 0) {
        sbx_buf_dispose(&sig);
        return raise_sbx(err == SBX_EAUTH ? PassphraseError : Error, err);
    }
    PyObject *r = PyBytes_FromStringAndSize((const char *)sig.ptr, (Py_ssize_t)sig.len);
    sbx_buf_dispose(&sig);
    return r;
}

/* pem_verify(path, key_pem, signature) -> bool */
PyObject *
sf_verify(PyObject *self, PyObject *args)
{
    PyObject *p, *pb;
    Py_buffer pem, sig;
    sbx_pem_key *key = NULL;
    sbx_source *src = NULL;
    int err;
    (void)self;
    if (!PyArg_ParseTuple(args, "Oy*y*", &p, &pem, &sig))
        return NULL;
    if ((pb = path_arg(p)) == NULL) {
        PyBuffer_Release(&pem);
        PyBuffer_Release(&sig);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS err = sbx_pem_key_parse_public(&key, pem.buf, (size_t)pem.len);
    if (err == 0 && (err = sbx_source_file_new(&src, PyBytes_AS_STRING(pb))) == 0)
        err = sbx_pem_verify(key, src, sig.buf, (size_t)sig.len);
    sbx_source_free(src);
    sbx_pem_key_free(key);
    Py_END_ALLOW_THREADS PyBuffer_Release(&pem);
    PyBuffer_Release(&sig);
    Py_DECREF(pb);
    if (err == SBX_EAUTH)
        Py_RETURN_FALSE;
    if (err < 0)
        return raise_sbx(Error, err);
    Py_RETURN_TRUE;
}

/* legacy_decrypt(key_pem, passphrase, data, wrapped, meta) -> plaintext bytes */
PyObject *
sf_legacy_decrypt(PyObject *self, PyObject *args)
{
    Py_buffer pem, pw, data, wrapped, meta;
    PyObject *metaobj, *res = NULL;
    sbx_legacy_key *key = NULL;
    sbx_buf out = SBX_BUF_INIT;
    int err;
    (void)self;
    memset(&meta, 0, sizeof meta);
    if (!PyArg_ParseTuple(args, "y*z*y*y*O", &pem, &pw, &data, &wrapped, &metaobj))
        return NULL;
    if (metaobj != Py_None && PyObject_GetBuffer(metaobj, &meta, PyBUF_SIMPLE) < 0)
        goto out;
    sbx_legacy_members m = {data.buf,    (size_t)data.len,
                            wrapped.buf, (size_t)wrapped.len,
                            meta.buf,    meta.buf ? (size_t)meta.len : 0};
    Py_BEGIN_ALLOW_THREADS err = sbx_legacy_key_parse(
        &key, pem.buf, (size_t)pem.len, fixed_passphrase, pw.buf != NULL ? &pw : NULL);
    if (err == 0)
        err = sbx_legacy_decrypt(&out, key, &m, NULL, NULL);
    sbx_legacy_key_free(key);
    Py_END_ALLOW_THREADS if (err < 0)
        raise_sbx(err == SBX_EFORMAT ? FormatError : DecryptError, err);
    else res = PyBytes_FromStringAndSize((const char *)out.ptr, (Py_ssize_t)out.len);
    sbx_buf_dispose(&out);
    if (meta.buf != NULL)
        PyBuffer_Release(&meta);
out:
    PyBuffer_Release(&pem);
    if (pw.buf != NULL)
        PyBuffer_Release(&pw);
    PyBuffer_Release(&data);
    PyBuffer_Release(&wrapped);
    return res;
}
