/* Random identifiers: RFC 9562 UUID version 4 from the kernel's generator. */
#ifndef AD_UUID_H
#define AD_UUID_H

#define AD_UUID_LEN 37 /* 36 characters and the NUL */

/* Writes a fresh version-4 UUID, lowercase "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx",
 * from getrandom(); a kernel that cannot give random bytes is fatal (an id
 * that might repeat is worse than no service). */
void ad_uuid_v4(char out[AD_UUID_LEN]);

/* 1 when `s` has the shape ad_uuid_v4 writes (36 characters, lowercase hex
 * and dashes in their places), so a malformed id is refused before a lookup. */
int ad_uuid_valid(const char *s);

#endif
