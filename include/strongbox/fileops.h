/*
 * strongbox/fileops.h - destroying files, and the seal workflow.
 *
 * 1. Destroy (best-effort secure deletion, honestly reported).
 *
 *     sbx_destroy_options o = SBX_DESTROY_OPTIONS_INIT;   // one pass of random data
 *     sbx_destroy_report rep;
 *     if (sbx_destroy(&rep, "secret.txt", &o) < 0) ... sbx_error_last()->message
 *     for (size_t i = 0; i < rep.nwarnings; i++) puts(rep.warnings[i]);
 *
 * The file's bytes are overwritten in place (passes of random data, each
 * followed by fsync), then the file is renamed to a random name in its
 * directory (so the old name does not linger in the directory's blocks),
 * truncated to zero, fsynced, unlinked, and the directory is fsynced.
 *
 * Overwriting in place only reaches the old bytes when the filesystem
 * writes in place and the device does not remap writes. That is not true on
 * copy-on-write or log-structured filesystems (btrfs, ZFS, F2FS, bcachefs,
 * NILFS), on overlay filesystems (the data may live in a lower layer), on
 * flash storage (SSDs, USB sticks and SD cards remap writes; TRIM may erase
 * the freed cells, at a time nobody controls), on tmpfs (pages may have been
 * swapped), or on network filesystems (the server, its snapshots and its
 * caches are out of reach). The report says which of these applies in
 * warnings[]; `reliable` is true only when none does and the device is known
 * to be a rotating disk. Copies made elsewhere (backups, snapshots, editor
 * swap files, the page cache of other machines) are never affected. The
 * only dependable way to keep plaintext off a disk is to never write it
 * there: encrypt from the start (sbx seal).
 *
 * Refusals: a path that is not a regular file (a symbolic link is never
 * followed: destroy the target by its own name), and a file with other hard
 * links (overwriting would destroy the data under the other names too). With
 * force, a multiply-linked file is only unlinked under this name; its data
 * is left untouched for the other names, and the report says so.
 *
 * 2. Seal / unseal (spec/seeds.md: the pyFileSec encrypt-and-destroy
 *    workflow, in the age v1 format). Format of the metadata: docs/seal.md.
 *
 *     sbx_seal_options so = SBX_SEAL_OPTIONS_INIT;
 *     sbx_seal_report sr;
 *     sbx_seal_file(&sr, "data.csv", recipients, n, &so);     // data.csv.age, original destroyed
 *
 *     sbx_unseal_options uo = SBX_UNSEAL_OPTIONS_INIT;
 *     sbx_unseal_report ur;
 *     sbx_unseal_file(&ur, "data.csv.age", identities, m, &uo); // data.csv, .age removed
 *
 * sbx_seal_file() encrypts FILE to FILE.age (mode 0600, atomic), then reads
 * the new file back and checks it completely: the header parses, the header
 * MAC verifies and every payload chunk authenticates, and the decrypted
 * bytes hash to the SHA-256 of the original. This needs no private key: the
 * library keeps the file key it just generated (in secure memory) for the
 * check and wipes it afterwards. With verify identities, the file is also
 * decrypted with them (proving that the recipient's key opens it). Only then
 * is the original destroyed (sbx_destroy()), unless keep is set.
 *
 * Pre-flight checks (sbx_seal_preflight()): a file inside a sync folder
 * (Dropbox, Google Drive, OneDrive, iCloud Drive), under version control
 * (git, Mercurial, Subversion), or with several hard links has probably
 * already been copied elsewhere: destroying it here cannot remove those
 * copies. seal reports these as warnings, or refuses with strict.
 *
 * Metadata (meta option) is stored in the header as an encrypted stanza of
 * our own type, "-> sbx-meta v1 SALT", whose body is ChaCha20-Poly1305 under
 * a key derived from the file key (HKDF-SHA-256). It is authenticated by the
 * header MAC and readable only with a key that decrypts the file; age skips
 * the stanza, so `age -d` still decrypts the file to exactly the original.
 * Its structure (version, salt, body size) is checked on every header read
 * (the type is registered with the age layer, strongbox/sys/age.h). Code
 * that builds or reads headers itself adds the stanza with
 * sbx_seal_meta_stanza_add() and reads it with sbx_seal_meta_from_header().
 */
#ifndef STRONGBOX_FILEOPS_H
#define STRONGBOX_FILEOPS_H

#include "strongbox/common.h"
#include "strongbox/age.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- destroy ---- */

#define SBX_DESTROY_MAX_WARNINGS 8
#define SBX_DESTROY_WARNING_LEN  320
/** Upper bound on --passes. */
#define SBX_DESTROY_MAX_PASSES 35

typedef struct sbx_destroy_options {
    unsigned version; /**< SBX_DESTROY_OPTIONS_VERSION */
    unsigned passes;  /**< overwrite passes of random data, 1..SBX_DESTROY_MAX_PASSES */
    bool force;       /**< a multiply-linked file: unlink this name only */
} sbx_destroy_options;

#define SBX_DESTROY_OPTIONS_VERSION 1
#define SBX_DESTROY_OPTIONS_INIT                                                                   \
    {                                                                                              \
        SBX_DESTROY_OPTIONS_VERSION, 1, false                                                      \
    }

/** What sbx_destroy() did and what it cannot guarantee. */
typedef struct sbx_destroy_report {
    uint64_t size;              /**< file size before destruction */
    uint64_t bytes_overwritten; /**< total bytes written over all passes */
    unsigned passes;            /**< passes done (0 when only unlinked) */
    uint64_t inode;             /**< inode number */
    uint64_t links;             /**< hard link count before destruction */
    char fs_type[24];           /**< "ext4", "btrfs", "tmpfs", ... or "unknown" */
    uint64_t fs_magic;          /**< statfs f_type */
    char device[24];            /**< "MAJ:MIN" of the filesystem's device */
    int rotational;             /**< 1 rotating disk, 0 flash/SSD, -1 unknown */
    int discard;                /**< 1 device supports discard/TRIM, 0 no, -1 unknown */
    char mount_point[4096];     /**< top directory of the file's filesystem (best effort) */
    bool overwritten;           /**< the data was overwritten in place */
    bool unlinked;              /**< the name is gone */
    bool reliable;              /**< no known reason the old blocks could survive */
    double seconds;             /**< wall time taken */
    size_t nwarnings;
    char warnings[SBX_DESTROY_MAX_WARNINGS][SBX_DESTROY_WARNING_LEN];
} sbx_destroy_report;

/**
 * @brief Overwrite, rename, truncate and unlink a regular file.
 *
 * @param report filled in as far as the operation went (also on refusal:
 *        inode, links, filesystem and device facts are known before any
 *        change). Must not be NULL.
 * @param path the file; a symbolic link is refused, never followed.
 * @param opts NULL for defaults (one pass, no force).
 * @return 0; SBX_ENOTFOUND (no such file); SBX_EINVAL (not a regular file,
 *         a symbolic link, other hard links without force, bad passes);
 *         SBX_EIO (a write, sync, rename or unlink failed: the message says
 *         which step, and how far the destruction went).
 */
SBX_EXTERN int sbx_destroy(sbx_destroy_report *report, const char *path,
                           const sbx_destroy_options *opts) SBX_WARN_UNUSED;

/**
 * @brief The name of a statfs f_type value ("ext4", "xfs", "btrfs", "zfs",
 *        "f2fs", "tmpfs", "overlay", "nfs", "cifs", ...).
 * @return a static string; "unknown" for values not in the table.
 */
SBX_EXTERN const char *sbx_fs_type_name(uint64_t magic);

/* ---- seal pre-flight ---- */

/** Why a file has probably been copied elsewhere already. */
typedef struct sbx_seal_preflight {
    bool sync_folder;      /**< inside a sync folder */
    char sync_service[24]; /**< "Dropbox", "Google Drive", "OneDrive", "iCloud Drive" */
    char sync_root[4096];  /**< the folder that was recognised */
    bool vcs;              /**< inside a version-controlled tree */
    char vcs_type[8];      /**< "git", "hg", "svn" */
    char vcs_root[4096];   /**< the directory holding .git/.hg/.svn */
    uint64_t links;        /**< hard link count (1 = only this name) */
} sbx_seal_preflight;

/**
 * @brief Look for reasons a file may already exist elsewhere.
 *
 * Sync folders are recognised by a path component naming the service
 * ("Dropbox", "Dropbox (Team)", "Google Drive", "GoogleDrive-...", "My Drive",
 * "OneDrive", "OneDrive - Org", "iCloud Drive", "com~apple~CloudDocs",
 * "Library/Mobile Documents") or by a marker in an ancestor directory
 * (.dropbox, .dropbox.cache, .tmp.drivedownload, .shortcut-targets-by-id,
 * OneDrive's .849C9593-D756-4E56-8D6E-42412F2A707B). Version control by a .git
 * (directory or file), .hg or .svn entry in the file's directory or any
 * ancestor. Heuristics: a folder synced under another name is not seen.
 *
 * @return 0, SBX_ENOTFOUND, SBX_EIO.
 */
SBX_EXTERN int sbx_seal_preflight_check(sbx_seal_preflight *out, const char *path);

/* ---- metadata ---- */

#define SBX_META_MAX_RECIPIENTS 16
#define SBX_META_MAX_HISTORY    32
#define SBX_META_LINE_LEN       256
/** Largest encoded metadata we write or accept. */
#define SBX_META_MAX_SIZE (16 * 1024)

/** Metadata kept encrypted inside a sealed file (docs/seal.md). */
typedef struct sbx_seal_meta {
    char name[SBX_META_LINE_LEN]; /**< original base name (never a directory path) */
    uint64_t size;                /**< original size in bytes */
    int64_t mtime;                /**< original modification time, Unix seconds */
    char tool[64];                /**< "sbx 0.1.0" */
    size_t nrecipients;
    /** "sha256:" + the first 16 hex digits of SHA-256(recipient string) */
    char recipients[SBX_META_MAX_RECIPIENTS][32];
    size_t nhistory;
    /** one line per event: "2026-01-31T12:00:00Z sealed ..." / "... rotated ..." */
    char history[SBX_META_MAX_HISTORY][SBX_META_LINE_LEN];
} sbx_seal_meta;

/**
 * @brief Encode metadata as the text of the stanza body (before encryption).
 * @return 0, SBX_ETOOBIG, SBX_ENOMEM.
 */
SBX_EXTERN int sbx_seal_meta_encode(sbx_buf *out, const sbx_seal_meta *meta);

/**
 * @brief Strictly decode metadata text (as written by sbx_seal_meta_encode()).
 * @return 0 or SBX_EFORMAT.
 */
SBX_EXTERN int sbx_seal_meta_decode(sbx_seal_meta *out, const uint8_t *text,
                                    size_t len) SBX_WARN_UNUSED;

/* The header types of strongbox/sys/age.h, for the two calls below. */
typedef struct sbx_age_header sbx_age_header;
typedef struct sbx_age_stanza sbx_age_stanza;

/** Stanza type of the encrypted metadata: "-> sbx-meta v1 SALT" (docs/seal.md). */
#define SBX_META_STANZA_TYPE    "sbx-meta"
#define SBX_META_STANZA_VERSION "v1"

/**
 * @brief Append the encrypted "sbx-meta" stanza holding meta to a header
 *        being built (strongbox/sys/age.h), for callers that build their
 *        own files:
 *
 *            sbx_age_header_new(&h);
 *            sbx_seal_meta_stanza_add(h, &meta, file_key);
 *            sbx_age_header_wrap(h, recipients, n, file_key);
 *            sbx_age_encryptor_new_with_header(&enc, dst, h, file_key, NULL);
 *
 *        A fresh random salt is drawn, so the stanza is new on every call.
 * @param file_key SECRET: the file key the file is encrypted under (the
 *        stanza's key is derived from it).
 * @return 0, SBX_ETOOBIG (the encoded metadata exceeds SBX_META_MAX_SIZE),
 *         SBX_EINVAL, SBX_ENOMEM.
 */
SBX_EXTERN int sbx_seal_meta_stanza_add(sbx_age_header *h, const sbx_seal_meta *meta,
                                        const uint8_t file_key[SBX_AGE_FILE_KEY_LEN]);

/**
 * @brief The metadata of an opened header (sbx_age_header_read() then
 *        sbx_age_header_unwrap(), strongbox/sys/age.h): its sbx-meta stanza
 *        (sbx_age_header_find()) decrypted with the header's file key.
 * @param found receives whether the header has metadata.
 * @return 0, SBX_EFORMAT (malformed metadata, an unknown version, two
 *         stanzas), SBX_EAUTH (the stanza does not decrypt with this file's
 *         key), SBX_EINVAL (h is not opened), SBX_ENOMEM.
 */
SBX_EXTERN int sbx_seal_meta_from_header(sbx_seal_meta *out, bool *found,
                                         const sbx_age_header *h) SBX_WARN_UNUSED;

/**
 * @brief Read the metadata of an age file: read its header once, open it
 *        with identities (one header MAC check), and decrypt the sbx-meta
 *        stanza (the payload is not read).
 * @param found receives whether the file has metadata.
 * @return 0, SBX_EFORMAT (malformed metadata), SBX_EAUTH (metadata stanza
 *         does not decrypt), or an error of sbx_age_decryptor_new() about
 *         the header (SBX_EHEADER, SBX_ENOMATCH, SBX_EMAC, SBX_EARMOR, ...).
 */
SBX_EXTERN int sbx_seal_meta_read(sbx_seal_meta *out, bool *found, const char *path,
                                  sbx_identity *const *identities, size_t count) SBX_WARN_UNUSED;

/* ---- seal / unseal ---- */

typedef struct sbx_seal_options {
    unsigned version; /**< SBX_SEAL_OPTIONS_VERSION */
    bool keep;        /**< keep the original (default: destroy it) */
    bool strict;      /**< refuse when the pre-flight check finds anything */
    bool meta;        /**< store encrypted metadata in the sealed file */
    unsigned passes;  /**< destroy passes (0 = 1) */
    /** Optional identities for a second, end-to-end decryption check. */
    sbx_identity *const *verify_identities;
    size_t nverify;
    /**
     * Version 2: with meta, a free-text note (pyFileSec's note=) recorded as
     * a second history line "<time> note: <text>" (one line: control
     * characters become spaces; cut to fit the line). NULL for none.
     */
    const char *note;
} sbx_seal_options;

#define SBX_SEAL_OPTIONS_VERSION 2
#define SBX_SEAL_OPTIONS_INIT                                                                      \
    {                                                                                              \
        SBX_SEAL_OPTIONS_VERSION, false, false, false, 1, NULL, 0, NULL                            \
    }

typedef struct sbx_seal_report {
    char output[4096];      /**< FILE.age */
    uint64_t size;          /**< plaintext bytes */
    uint64_t output_size;   /**< bytes of FILE.age */
    uint8_t sha256[32];     /**< SHA-256 of the plaintext */
    bool verified;          /**< read back: header MAC, every chunk, SHA-256 */
    bool verified_identity; /**< also decrypted with verify_identities */
    bool destroyed;         /**< the original was destroyed (or its name unlinked) */
    bool meta;              /**< metadata was stored */
    sbx_seal_preflight preflight;
    sbx_destroy_report destroy; /**< valid when destroyed or a destroy was attempted */
} sbx_seal_report;

/**
 * @brief Encrypt path to path.age, verify it, then destroy path.
 *
 * A file with several hard links is sealed (report->preflight.links says
 * so, for the caller to warn) and only its name is removed afterwards; the data stays reachable
 * under the other names (report.destroy says so). With strict it is refused before any work, as are
 * files in sync folders and version-controlled trees.
 *
 * @param recipients the real recipients (no passphrase: a sealed file is
 *        meant to be opened with a key kept elsewhere).
 * @return 0; SBX_EEXISTS (path.age exists: nothing was done); SBX_EINVAL
 *         (not a regular file, strict refusal, passphrase recipient);
 *         SBX_EAUTH (the read-back check failed: path.age is removed, the
 *         original kept); SBX_EIO; or the destroy error (path.age is then
 *         complete and verified, the original still there).
 */
SBX_EXTERN int sbx_seal_file(sbx_seal_report *report, const char *path,
                             sbx_recipient *const *recipients, size_t count,
                             const sbx_seal_options *opts) SBX_WARN_UNUSED;

typedef struct sbx_unseal_options {
    unsigned version;   /**< SBX_UNSEAL_OPTIONS_VERSION */
    bool force;         /**< replace an existing output file */
    bool keep;          /**< keep FILE.age */
    const char *output; /**< output path; NULL = path without ".age" */
} sbx_unseal_options;

#define SBX_UNSEAL_OPTIONS_VERSION 1
#define SBX_UNSEAL_OPTIONS_INIT                                                                    \
    {                                                                                              \
        SBX_UNSEAL_OPTIONS_VERSION, false, false, NULL                                             \
    }

typedef struct sbx_unseal_report {
    char output[4096]; /**< the plaintext file written */
    uint64_t size;     /**< plaintext bytes */
    uint8_t sha256[32];
    bool removed;      /**< FILE.age was removed */
    bool has_meta;     /**< the file carried metadata (in meta) */
    bool meta_size_ok; /**< with metadata: its recorded size matches */
    sbx_seal_meta meta;
} sbx_unseal_report;

/**
 * @brief Decrypt path (FILE.age) to FILE (0600, atomic) and remove path once
 *        FILE is complete and every chunk verified.
 * @return 0; SBX_EINVAL (no ".age" suffix and no output given);
 *         SBX_EEXISTS (FILE exists, no force); errors of decryption
 *         (SBX_ENOMATCH, SBX_EMAC, SBX_EPAYLOAD, ...: nothing is written);
 *         SBX_EIO.
 */
SBX_EXTERN int sbx_unseal_file(sbx_unseal_report *report, const char *path,
                               sbx_identity *const *identities, size_t count,
                               const sbx_unseal_options *opts) SBX_WARN_UNUSED;

#ifdef __cplusplus
}
#endif
#endif
