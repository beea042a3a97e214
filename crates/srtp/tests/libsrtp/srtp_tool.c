/*
 * libsrtp (Debian's libsrtp2) on the command line, for realtimer-srtp's
 * interop tests and benchmark.
 *
 *   srtp_tool PROFILE KEYSALT_HEX protect-rtp|unprotect-rtp|protect-rtcp|unprotect-rtcp
 *       reads one packet per line in hex on stdin, writes the result per
 *       line in hex (or "ERR <libsrtp status>") on stdout.
 *   srtp_tool PROFILE KEYSALT_HEX bench-protect|bench-unprotect COUNT SIZE
 *       protects (or unprotects) COUNT RTP packets with SIZE bytes of
 *       payload and prints "<cpu ns> <payload bytes>".
 *
 * PROFILE: cm80, cm32, gcm128, gcm256. KEYSALT_HEX: master key then salt.
 */
#include <srtp2/srtp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PACKET 4096

static void die(const char *what) {
    fprintf(stderr, "srtp_tool: %s\n", what);
    exit(2);
}

static size_t unhex(const char *hex, unsigned char *out, size_t cap) {
    size_t n = strlen(hex) / 2;
    if (n > cap) die("hex input too long");
    for (size_t i = 0; i < n; i++) {
        unsigned int b;
        if (sscanf(hex + 2 * i, "%2x", &b) != 1) die("bad hex");
        out[i] = (unsigned char)b;
    }
    return n;
}

static srtp_t session(const char *profile, unsigned char *key, int inbound) {
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    if (!strcmp(profile, "cm80")) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
    } else if (!strcmp(profile, "cm32")) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
    } else if (!strcmp(profile, "gcm128")) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp);
    } else if (!strcmp(profile, "gcm256")) {
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtp);
    } else {
        die("unknown profile");
    }
    if (!strcmp(profile, "cm32")) {
        /* RFC 5764 §4.1.2: SRTCP keeps the 80-bit tag. */
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
    } else {
        policy.rtcp = policy.rtp;
    }
    policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
    policy.key = key;
    policy.window_size = 1024;
    policy.allow_repeat_tx = 1;
    srtp_t s;
    if (srtp_create(&s, &policy) != srtp_err_status_ok) die("srtp_create failed");
    return s;
}

static double cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int rtp_packet(unsigned char *p, unsigned seq, int size) {
    memset(p, 0, 12);
    p[0] = 0x80;
    p[1] = 96;
    p[2] = (unsigned char)(seq >> 8);
    p[3] = (unsigned char)seq;
    p[11] = 42;
    for (int i = 0; i < size; i++) p[12 + i] = (unsigned char)i;
    return 12 + size;
}

/* Packets are made (and, to bench unprotect, protected) in batches
 * outside the timed part; only the libsrtp calls are timed. */
#define BATCH 256

static void bench(const char *profile, unsigned char *key, int unprotect, long count, int size) {
    srtp_t tx = session(profile, key, 0), rx = session(profile, key, 1);
    static unsigned char p[BATCH][MAX_PACKET + SRTP_MAX_TRAILER_LEN];
    int len[BATCH];
    if (size + 12 > MAX_PACKET) die("size too large");
    double spent = 0;
    unsigned seq = 0;
    for (long done = 0; done < count; done += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            len[i] = rtp_packet(p[i], seq++ & 0xffff, size);
            if (unprotect && srtp_protect(tx, p[i], &len[i]) != srtp_err_status_ok) die("protect failed");
        }
        double start = cpu_ns();
        for (int i = 0; i < BATCH; i++) {
            srtp_err_status_t status = unprotect ? srtp_unprotect(rx, p[i], &len[i]) : srtp_protect(tx, p[i], &len[i]);
            if (status != srtp_err_status_ok) die("bench packet failed");
        }
        spent += cpu_ns() - start;
    }
    printf("%.0f %ld\n", spent, (count + BATCH - 1) / BATCH * BATCH * size);
}

int main(int argc, char **argv) {
    if (argc < 4) die("usage: srtp_tool PROFILE KEYSALT_HEX MODE [COUNT SIZE]");
    if (srtp_init() != srtp_err_status_ok) die("srtp_init failed");
    unsigned char key[64];
    unhex(argv[2], key, sizeof key);
    const char *mode = argv[3];
    if (!strncmp(mode, "bench-", 6)) {
        if (argc < 6) die("bench needs COUNT SIZE");
        bench(argv[1], key, !strcmp(mode, "bench-unprotect"), atol(argv[4]), atoi(argv[5]));
        return 0;
    }
    int inbound = !strncmp(mode, "unprotect", 9);
    int rtcp = strstr(mode, "rtcp") != NULL;
    srtp_t s = session(argv[1], key, inbound);
    static char line[2 * MAX_PACKET + 16];
    unsigned char p[MAX_PACKET + SRTP_MAX_TRAILER_LEN];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        int len = (int)unhex(line, p, MAX_PACKET);
        srtp_err_status_t status;
        if (inbound) {
            status = rtcp ? srtp_unprotect_rtcp(s, p, &len) : srtp_unprotect(s, p, &len);
        } else {
            status = rtcp ? srtp_protect_rtcp(s, p, &len) : srtp_protect(s, p, &len);
        }
        if (status != srtp_err_status_ok) {
            printf("ERR %d\n", (int)status);
        } else {
            for (int i = 0; i < len; i++) printf("%02x", p[i]);
            printf("\n");
        }
        fflush(stdout);
    }
    return 0;
}
