/*
 * src/fileops/age_file.c - opening an age file once for the file tools
 * (pad, seal, rotate), with the public stanza interface only.
 *
 * Implementation notes:
 *  - The armor mode is applied as sbx_age_decryptor_new() applies it: AUTO
 *    puts an armor detector in front, ONLY a strict armor decoder, anything
 *    else reads the binary form. The filter is owned by the opened file and
 *    must outlive any decryptor reading `in`.
 *  - One sbx_age_header_read() (parse + the registered stanza rules) and one
 *    sbx_age_header_unwrap() (file key + one MAC check): the header is never
 *    parsed or authenticated twice.
 */
#include "fileops/age_file.h"
#include "core/error.h"

#include <stdlib.h>

/* see fileops/age_file.h */
int
sbx_fileops__age_file_open(sbx_fileops__age_file *f, sbx_source *src, int armor,
                           sbx_identity *const *ids, size_t nids)
{
    int err = 0;
    f->header = NULL;
    f->armor = NULL;
    f->armored = false;
    f->in = src;
    if (armor == SBX_ARMOR_AUTO)
        err = sbx_armor_detect_new(&f->armor, &f->armored, src);
    else if (armor == SBX_ARMOR_ONLY) {
        err = sbx_armor_decoder_new(&f->armor, src);
        f->armored = true;
    }
    if (err == 0 && f->armor != NULL)
        f->in = f->armor;
    if (err == 0 && (err = sbx_age_header_read(&f->header, f->in)) == 0)
        err = sbx_age_header_unwrap(f->header, ids, nids);
    if (err < 0)
        sbx_fileops__age_file_close(f);
    return err;
}

/* see fileops/age_file.h */
void
sbx_fileops__age_file_close(sbx_fileops__age_file *f)
{
    sbx_age_header_free(f->header);
    sbx_source_free(f->armor);
    f->header = NULL;
    f->armor = NULL;
    f->in = NULL;
}

/* ---- a source that owns the chain below it ---- */

#define MAX_UNDER 3

struct owning_source {
    sbx_source base;
    sbx_source *top;
    sbx_source *under[MAX_UNDER];
};

static int
owning_read(sbx_source *self, uint8_t *buf, size_t len, size_t *nread)
{
    return sbx_source_read(((struct owning_source *)self)->top, buf, len, nread);
}

static void
owning_free(sbx_source *self)
{
    struct owning_source *o = (struct owning_source *)self;
    if (o == NULL)
        return;
    sbx_source_free(o->top);
    for (size_t i = 0; i < MAX_UNDER; i++)
        sbx_source_free(o->under[i]);
    free(o);
}

/* see fileops/age_file.h */
int
sbx_fileops__owning_source_new(sbx_source **out, sbx_source *top, sbx_source *const *under,
                               size_t n)
{
    struct owning_source *o;
    *out = NULL;
    if (n > MAX_UNDER)
        return sbx__error(SBX_EINVAL, "owning source: at most %d sources below", MAX_UNDER);
    if ((o = calloc(1, sizeof(*o))) == NULL)
        return sbx__error_nomem();
    o->base.read = owning_read;
    o->base.free = owning_free;
    o->top = top;
    for (size_t i = 0; i < n; i++)
        o->under[i] = under[i];
    *out = &o->base;
    return 0;
}
