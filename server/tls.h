/*
 * server/tls.h - the key server's TLS: context, self-signed certificate,
 * session ticket keys shared through storage (internal).
 *
 * Call sequence (serve.c): kms_tls_generate_cert when the certificate is
 * missing, kms_tls_fingerprint to print it, kms_tls_new, then
 * kms_tls_tickets_refresh once before accepting and every minute after;
 * kms_tls_ssl_new per connection, kms_tls_reload on SIGHUP.
 *
 * Context: TLS 1.2 minimum (1.3 preferred), ECDHE with AES-GCM or
 * ChaCha20-Poly1305 only, no compression, no renegotiation. With a client
 * CA, SSL_VERIFY_PEER without FAIL_IF_NO_PEER_CERT: a client may present a
 * certificate (it must then verify) or authenticate with a token.
 *
 * Session tickets (TLS 1.2 and 1.3 resumption on any node and across
 * restarts): storage namespace "tls", key "ticket-keys" holds, sealed with
 * kms_keystore_seal (purpose "tls-ticket-keys"), a list of records
 * created(u64be) || name(16) || aes(32) || hmac(32), newest first. The newest
 * encrypts; a new one is made when it is 12 h old; older ones decrypt (and
 * ask for a renewed ticket) until 36 h after their creation (24 h after they
 * stopped encrypting). Concurrent rotations by several nodes resolve with a
 * conditional put: the loser re-reads the winner's set.
 */
#ifndef SBX_SERVER_TLS_H
#define SBX_SERVER_TLS_H

#include "keystore.h"
#include "store.h"

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#define KMS_TLS_TICKET_ROTATE   (12 * 3600) /* seconds a ticket key encrypts */
#define KMS_TLS_TICKET_KEEP     (24 * 3600) /* seconds it still decrypts after that */
#define KMS_TLS_FINGERPRINT_LEN 96          /* "AB:CD:..." 32 bytes + NUL */
#define KMS_TLS_CN_MAX          128

typedef struct kms_tls kms_tls;

typedef struct {
    const char *cert_file; /* PEM certificate chain */
    const char *key_file;  /* PEM private key */
    const char *client_ca; /* PEM CA bundle, or NULL: no client certificates */
} kms_tls_options;

/*
 * Writes a new ECDSA P-256 key (key_path, 0600 at open) and a self-signed
 * certificate for localhost, 127.0.0.1 and ::1 valid one year (cert_path,
 * 0644). Each file is written to a temporary name, synced and renamed; the
 * certificate last, so its presence implies the key's.
 */
int kms_tls_generate_cert(const char *cert_path, const char *key_path);

/* SHA-256 fingerprint of the first certificate of a PEM file, as "AB:CD:...". */
int kms_tls_fingerprint(char out[KMS_TLS_FINGERPRINT_LEN], const char *cert_path);

/* Builds the server context (see above). SBX_EIO/SBX_EFORMAT naming the bad file. */
int kms_tls_new(kms_tls **out, const kms_tls_options *opt);
void kms_tls_free(kms_tls *t);
/*
 * A new server connection on the current context (thread-safe); NULL when
 * out of memory. It keeps that context after a reload.
 */
SSL *kms_tls_ssl_new(kms_tls *t);

/*
 * Builds a new context from opt (certificate, key, client CA; the same ticket
 * keys) and makes it the one for new connections (thread-safe). On error the
 * running context stays and the error names the bad file.
 */
int kms_tls_reload(kms_tls *t, const kms_tls_options *opt);

/*
 * Loads the ticket keys from storage, rotates and prunes them (writing the
 * new set back) and installs them. Thread-safe against the handshakes of
 * other threads; st must be the calling thread's handle.
 */
int kms_tls_tickets_refresh(kms_tls *t, kms_keystore *ks, kms_store *st, int64_t now);

/*
 * The subject CN of the peer's certificate when it presented one that
 * verified (UTF-8, 1..KMS_TLS_CN_MAX bytes, no NUL or control characters).
 */
bool kms_tls_peer_cn(SSL *ssl, char out[KMS_TLS_CN_MAX + 1]);

#endif
