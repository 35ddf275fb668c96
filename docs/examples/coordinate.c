/* clang-format off */
/*
 * The smallest useful C program on liblcmcoord: ask an EM once whether a VNFC may be
 * replaced, and print the LcmCoord it answers. Build it against an installed lcmcoord with
 *   cc coordinate.c $(pkg-config --cflags --libs lcmcoord) -Wl,-rpath,$(pkg-config --variable=libdir lcmcoord) -o coordinate
 * (the rpath lets it find liblcmcoord under a prefix the loader does not search, such as
 * /opt/lcmcoord: set PKG_CONFIG_PATH=PREFIX/lib/pkgconfig first; a system install needs
 * neither) and run it as `./coordinate http://127.0.0.1:6789 < request.json`.
 * (Not reflowed by clang-format: the build line is copied from here whole.)
 * Exit status: 0 on CONTINUE, 1 on ABORT/CANCELLED or an error, 2 on usage errors.
 */
/* clang-format on */
#include <stdio.h>
#include <stdlib.h>

#include <lcmcoord/lcmcoord.h>

static char *read_all(FILE *in)
{
    size_t length = 0, allocated = 4096;
    char *text = malloc(allocated);
    size_t n;
    while (text && (n = fread(text + length, 1, allocated - length - 1, in)) > 0) {
        length += n;
        if (allocated - length < 2) {
            char *bigger = realloc(text, allocated *= 2);
            if (bigger == NULL)
                free(text);
            text = bigger;
        }
    }
    if (text)
        text[length] = '\0';
    return text;
}

static void print_log(void *userdata, lcmc_log_level level, const char *message)
{
    (void)userdata;
    (void)level;
    fprintf(stderr, "coordinate: %s\n", message);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: coordinate ENDPOINT < LcmCoordRequest.json\n");
        return 2;
    }
    char *request = read_all(stdin);
    if (request == NULL)
        return 2;

    lcmc_engine *engine = NULL;
    lcmc_client *client = NULL;
    lcmc_coordination *coord = NULL;
    int exit_status = 1;

    if (lcmc_engine_new(&engine) != LCMC_OK)
        goto done;
    /* Progress lines ("EM busy (503), retrying in 5 s, ...") when LCMC_VERBOSE is set. */
    lcmc_engine_set_log(engine, print_log, NULL,
                        getenv("LCMC_VERBOSE") ? LCMC_LOG_INFO : LCMC_LOG_WARN);

    lcmc_client_options options = LCMC_CLIENT_OPTIONS_INIT;
    options.endpoint = argv[1];
    options.timeout = 60; /* one wall-clock deadline for all requests and waits */
    if (lcmc_client_new(&client, engine, &options) != LCMC_OK) {
        fprintf(stderr, "coordinate: %s\n", lcmc_error_message(lcmc_engine_last_error(engine)));
        exit_status = 2;
        goto done;
    }

    if (lcmc_client_coordinate(client, request, 0, &coord) != LCMC_OK) {
        const lcmc_error *err = lcmc_coordination_error(coord);
        fprintf(stderr, "coordinate: %s\n", coord ? lcmc_error_message(err) : "out of memory");
        goto done;
    }
    printf("%s\n", lcmc_coordination_lcmcoord_json(coord));
    exit_status = lcmc_coordination_result(coord) == LCMC_RESULT_CONTINUE ? 0 : 1;

done:
    lcmc_coordination_free(coord);
    lcmc_client_free(client);
    lcmc_engine_free(engine);
    free(request);
    return exit_status;
}
