/*
 * app_file.h - what the two halves of file transfer share (internal to
 * app_file.c, app_file_send.c, app_file_recv.c): sizes, the part-file
 * names, and stepwise hashing of a file range.
 *
 * Interface: agent_file_sha256_range() feeds bytes [from, to) of fd to
 * ctx (MP_ERR_IO, MP_ERR_CRYPTO); agent_file_step_end() is where the
 * next hashing step of a range ends.
 */
#ifndef MAILPUNCH_AGENT_APP_FILE_H
#define MAILPUNCH_AGENT_APP_FILE_H

#include <stdint.h>

#include <openssl/evp.h>

#define CHUNK 65536                    /* DATA payload the sender writes */
#define HASH_STEP (16 * 1024 * 1024)   /* hashed per turn of the loop */
#define SMALL_FRAME 512                /* every frame but DATA fits */
#define PART_SUFFIX ".mailpunch-part"
#define META_SUFFIX ".mailpunch-meta"

int agent_file_sha256_range(int fd, uint64_t from, uint64_t to, EVP_MD_CTX *ctx);
uint64_t agent_file_step_end(uint64_t done, uint64_t total);

#endif
