#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/error.h>
#include <libavutil/opt.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersrc.h>
#include <libavfilter/buffersink.h>

// Replaces AVERROR(e): FFmpeg's negative error code for a POSIX errno.
static inline int vigil_averror(int e) { return AVERROR(e); }
// Replaces AVERROR_EOF: end of file.
static inline int vigil_averror_eof(void) { return AVERROR_EOF; }
// Replaces AVERROR_INVALIDDATA: invalid data found when processing input.
static inline int vigil_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }

// Replaces AVERROR_EXIT: the interrupt callback asked to stop.
static inline int vigil_averror_exit(void) { return AVERROR_EXIT; }
// The "no timestamp" value (AV_NOPTS_VALUE is a macro Swift cannot import).
static inline int64_t vigil_nopts(void) { return AV_NOPTS_VALUE; }

#include <fcntl.h>
// O_DIRECT (glibc defines it only under _GNU_SOURCE; its value is always __O_DIRECT): recorded
// footage is written past the page cache.
static inline int vigil_o_direct(void) { return __O_DIRECT; }
