/*
 * The libcurl floor for the benchmark's section 5: N POSTs of one body to one URL through
 * a curl multi handle, as lean as libcurl allows (the same 64 connections per host and
 * 128 transfers in flight as lcmcoord's engine; easy handles set up once and re-added,
 * headers fixed, body discarded). No JSON, no Lua, no bookkeeping: what any client built
 * on Debian's libcurl multi interface pays per request. bench/run.sh compiles it.
 *
 *   curl_floor URL BODY_FILE N  ->  one JSON line: {"n":..,"ok":..,"wall":..,"cpu":..}
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define IN_FLIGHT 128

static size_t discard(char *data, size_t size, size_t count, void *userdata)
{
    (void)data;
    (void)userdata;
    return size * count;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: curl_floor URL BODY_FILE N\n");
        return 2;
    }
    const char *url = argv[1];
    long n = strtol(argv[3], NULL, 10);
    FILE *f = fopen(argv[2], "rb");
    if (f == NULL || n <= 0) {
        fprintf(stderr, "curl_floor: cannot read %s or bad N\n", argv[2]);
        return 2;
    }
    static char body[65536];
    size_t body_length = fread(body, 1, sizeof body, f);
    fclose(f);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Version: 1.0.0");
    headers = curl_slist_append(headers, "Accept: application/json");
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");

    CURL *easy[IN_FLIGHT];
    long started = 0, done = 0, ok = 0;
    double t0 = now(), c0 = cpu_seconds();
    for (int i = 0; i < IN_FLIGHT; i++) {
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_length);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy[i], CURLOPT_TCP_NODELAY, 1L);
        if (started < n) {
            curl_multi_add_handle(multi, easy[i]);
            started++;
        }
    }
    while (done < n) {
        int running = 0;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            long status = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            if (msg->data.result == CURLE_OK && status == 201)
                ok++;
            done++;
            curl_multi_remove_handle(multi, e);
            if (started < n) {
                curl_multi_add_handle(multi, e);
                started++;
            }
        }
        if (done < n)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    double wall = now() - t0, cpu = cpu_seconds() - c0;
    printf("{\"n\": %ld, \"ok\": %ld, \"wall\": %.6f, \"cpu\": %.6f}\n", n, ok, wall, cpu);
    for (int i = 0; i < IN_FLIGHT; i++) {
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    curl_slist_free_all(headers);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return ok == n ? 0 : 1;
}
