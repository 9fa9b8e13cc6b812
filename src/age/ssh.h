/*
 * src/age/ssh.h - SSH and PEM keys as age recipients and identities
 * (internal; age.md §6.3, §6.4).
 *
 *  ssh.c      the ssh-ed25519 and ssh-rsa stanza types, SSH wire encoding,
 *             public key lines ("ssh-ed25519 AAAA... comment", authorized_keys)
 *  sshkey.c   OpenSSH private keys (openssh-key-v1, unencrypted)
 *  pem.c      PEM public and private keys through the OpenSSL decoders
 *
 * Every parser here reads untrusted text: bounded, strict, and its error
 * messages never quote key material.
 */
#ifndef SBX_AGE_SSH_H
#define SBX_AGE_SSH_H

#include "age/keys.h"

#include <openssl/evp.h>

#define SBX_SSH_RSA_MIN_BITS 2048
#define SBX_SSH_RSA_MAX_BITS 16384
/** Largest SSH public key blob accepted (a 16384-bit RSA key is about 2 KiB). */
#define SBX_SSH_MAX_BLOB 4096
/** Largest key file (PEM or OpenSSH) accepted. */
#define SBX_SSH_MAX_KEY_FILE (64 * 1024)

/* ---- SSH wire encoding (RFC 4251 §5), bounded reads ---- */

typedef struct sbx_ssh_reader {
    const uint8_t *p;
    size_t len;
} sbx_ssh_reader;

/* Each returns 0 or SBX_EFORMAT ("truncated"); outputs point into the input. */
int sbx_ssh__read_u32(sbx_ssh_reader *r, uint32_t *v);
int sbx_ssh__read_string(sbx_ssh_reader *r, const uint8_t **s, size_t *len);
/* A positive mpint in minimal form; s and len give the magnitude without the sign byte. */
int sbx_ssh__read_mpint(sbx_ssh_reader *r, const uint8_t **s, size_t *len);
bool sbx_ssh__string_is(const uint8_t *s, size_t len, const char *lit);

/* SBX_EUNSUPPORTED naming an SSH key type (printed only when it is a plain token). */
int sbx_age__ssh_unsupported_type(const uint8_t *type, size_t len);

/* ---- recipients ---- */

/* From an SSH public key blob; comment may be NULL. */
int sbx_age__ssh_recipient_from_wire(sbx_recipient **out, const uint8_t *wire, size_t len,
                                     const char *comment);
/* From an OpenSSL key (RSA or Ed25519; only the public part is used). */
int sbx_age__ssh_recipient_from_pkey(sbx_recipient **out, EVP_PKEY *pkey);
/*
 * A public key line. strict (sbx_recipient_parse): "TYPE BLOB[ COMMENT]"
 * with single spaces. Otherwise authorized_keys syntax: leading options,
 * runs of blanks.
 */
int sbx_age__ssh_recipient_parse_line(sbx_recipient **out, const char *line, bool strict);
/* True when the line looks like an SSH key line rather than an age key. */
bool sbx_age__ssh_line_is_key(const char *line);
/* True when s starts with an SSH public key type ("ssh-", "ecdsa-", "sk-", "rsa-"). */
bool sbx_age__ssh_type_token(const char *s);

/* ---- identities ---- */

int sbx_age__ssh_ed25519_identity_new(sbx_identity **out, const uint8_t seed[32]);
/* Takes ownership of pkey on success (an RSA private key). */
int sbx_age__ssh_rsa_identity_new(sbx_identity **out, EVP_PKEY *pkey);
/* A whole "-----BEGIN OPENSSH PRIVATE KEY-----" file. */
int sbx_age__openssh_identity_parse(sbx_identity **out, const char *text, size_t len);
/* A whole PEM private key file (PKCS#1, PKCS#8, encrypted PKCS#8, legacy PEM). */
int sbx_age__pem_identity_parse(sbx_identity **out, const char *text, size_t len,
                                sbx_passphrase_cb cb, void *payload);
/* One PEM public key block ("PUBLIC KEY" or "RSA PUBLIC KEY"). */
int sbx_age__pem_recipient_parse(sbx_recipient **out, const char *text, size_t len);

/*
 * Decode one PEM private key with OpenSSL (passphrase from cb when the key
 * is protected). 0, SBX_EFORMAT, SBX_ENOKEY (protected, no cb), SBX_EAUTH
 * (wrong passphrase), SBX_ECANCELED.
 */
int sbx_age__pem_decode_private(EVP_PKEY **out, const char *text, size_t len, sbx_passphrase_cb cb,
                                void *payload);

/*
 * RSA key policy, for every RSA key that becomes a recipient or an identity
 * (ssh-rsa strings and files, PEM and OpenSSH keys, legacy keys): min_bits to
 * SBX_SSH_RSA_MAX_BITS bits (SBX_EUNSUPPORTED naming the size), an odd
 * modulus and an odd public exponent from 3 to 2^32-1 (SBX_EFORMAT naming the
 * fault; SBX_EUNSUPPORTED for a larger exponent). OpenSSL loads keys without
 * these checks, and with e = 1 RSA-OAEP would send the file key in the clear.
 * Exponents such as 35 (old OpenSSH) or 3 are accepted.
 */
int sbx_age__rsa_check_key(const EVP_PKEY *pkey, int min_bits);

/*
 * RSA decryption with a chosen padding (RSA_PKCS1_OAEP_PADDING with md as
 * OAEP and MGF1 hash and an optional label, or RSA_PKCS1_PADDING). out must
 * hold the modulus size. SBX_EAUTH when the padding does not check.
 */
int sbx_age__rsa_decrypt(uint8_t *out, size_t *out_len, size_t out_cap, EVP_PKEY *pkey, int padding,
                         const char *md, const char *label, const uint8_t *in, size_t in_len);

#endif
