/* The build machine's platform in OCI terms (linux/amd64, linux/arm64/v8...). */
#ifndef KILN_PLATFORM_H
#define KILN_PLATFORM_H

const char *platform_os(void);
const char *platform_arch(void);
/* "" when the architecture has no variant */
const char *platform_variant(void);
/* "linux/amd64" or "linux/arm/v7" */
const char *platform_string(void);

#endif
