/*
 * strongbox/strongbox.h - the whole public API of libstrongbox.
 *
 * libstrongbox protects files and data with OpenSSL 3 primitives:
 *   error.h     error codes and per-thread detail messages
 *   memory.h    locked, wiped memory for secrets
 *   random.h    the CSPRNG
 *   aead.h      AES-256-GCM / ChaCha20-Poly1305 over buffers
 *   kdf.h       HKDF-SHA-256, HMAC-SHA-256, scrypt
 *   encoding.h  strict base64 and Bech32
 *   stream.h    sources, sinks, filters; atomic file replacement
 *   age.h       age v1 file encryption (X25519, passphrase, armor)
 *
 * Link with `pkg-config --libs strongbox`.
 */
#ifndef STRONGBOX_H
#define STRONGBOX_H

#include "strongbox/common.h"
#include "strongbox/error.h"
#include "strongbox/memory.h"
#include "strongbox/random.h"
#include "strongbox/aead.h"
#include "strongbox/kdf.h"
#include "strongbox/encoding.h"
#include "strongbox/stream.h"
#include "strongbox/age.h"
#include "strongbox/tmpfile.h"
#include "strongbox/migrate.h"
#include "strongbox/fileops.h"
#include "strongbox/pad.h"
#include "strongbox/rotate.h"
#include "strongbox/inspect.h"
#include "strongbox/sign.h"
#include "strongbox/kms_name.h"
#include "strongbox/plugin.h"
#include "strongbox/kms.h"
#include "strongbox/records.h"

#endif
