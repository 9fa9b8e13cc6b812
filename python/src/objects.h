/*
 * python/src/objects.h - the layout of strongbox.Recipient and
 * strongbox.Identity instances, shared by _strongbox (which defines the
 * types) and _kms (which makes key-server recipients and identities as
 * instances of them, so the core's encrypt and decrypt accept them).
 */
#ifndef STRONGBOX_PY_OBJECTS_H
#define STRONGBOX_PY_OBJECTS_H

#include <Python.h>

#include "strongbox/age.h"

typedef struct {
    PyObject_HEAD sbx_recipient *r;
} RecipientObject;

typedef struct {
    PyObject_HEAD sbx_identity *id;
} IdentityObject;

#endif
