/*
 * `lcmcoord params [options] [ADDITIONAL_PARAMS.json]`: the VNFC parameters a VNFM (Tacker)
 * passes to a CoordinateVNF script for one VDU and one VNFC, made from a VNF package's
 * additionalParams, so that an operator can run or check the package's script without
 * writing that JSON by hand. The result is the operator's new_vnfc_param (or old_vnfc_param,
 * as on a rollback) plus what the VNFM adds: ssh_ip, is_rollback, vnfc_info_id, inst and an
 * LcmCoordRequest with fresh ids, the operation, Tacker's placeholder action and _links on a
 * VNFM. It is printed only once complete; any mistake is one line on stderr and exit 2.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>

#include "host.h"
#include "lcmcoord/json.h"
#include "options.h"
#include "run_io.h"
#include "safe_text.h"
#include "subcommands.h"

#define INPUT_CAP         ((size_t)16 * 1024 * 1024)
#define DEFAULT_SSH_IP    "192.0.2.10" /* TEST-NET-1: an address that is nobody's */
#define DEFAULT_VNFM      "http://vnfm.example:9890"
#define DEFAULT_OPERATION "CHANGE_VNFPKG"

static const char usage_line[] =
    "usage: lcmcoord params [--vdu ID] [--new|--old] [--vnfc ID] [--operation TYPE] "
    "[--ssh-ip ADDR] [--vnfm URL] [ADDITIONAL_PARAMS.json]";

static void print_help(void)
{
    printf("%s\n", usage_line);
    fputs("\n"
          "Prints the VNFC parameters (JSON) a VNFM such as Tacker passes to a CoordinateVNF\n"
          "script for one VDU and VNFC, made from a package's additionalParams (the file, or\n"
          "stdin when none or '-' is given; either {\"additionalParams\": {...}} or the object\n"
          "itself). Feed the result to `lcmcoord check` or `lcmcoord run`.\n"
          "\n"
          "Options:\n"
          "  --vdu ID         the vdu_id in vdu_params (default: the only one)\n"
          "  --new            new_vnfc_param, is_rollback false (the default)\n"
          "  --old            old_vnfc_param, is_rollback true (the rollback script's)\n"
          "  --vnfc ID        vnfc_info_id (default: VDU-<random hex>)\n"
          "  --operation TYPE lcmOperationType, any case (default CHANGE_VNFPKG)\n"
          "  --ssh-ip ADDR    the VNFC's address (default " DEFAULT_SSH_IP ")\n"
          "  --vnfm URL       the VNFM's apiRoot in _links (default " DEFAULT_VNFM ")\n"
          "  -h, --help       show this help\n"
          "\n"
          "Exit status: 0 printed; 2 usage error or unusable additionalParams.\n",
          stdout);
}

typedef struct params_options {
    const char *vdu;
    const char *vnfc;
    const char *operation;
    const char *ssh_ip;
    const char *vnfm;
    const char *file;
    int old;
    int new_flag;
} params_options;

static int usage_error(const char *fmt, const char *arg)
{
    return lcmc_host_usage_error("params", usage_line, fmt, arg);
}

/* One line on stderr, exit 2: the input, not the command line, is wrong. The message may
 * quote the package's file (a vdu_id): made safe, it stays one line and nothing in it
 * reaches the terminal as a control (safe_text.h). */
static int input_error(const char *fmt, const char *arg)
{
    char text[1024];
    snprintf(text, sizeof text, fmt, arg);
    fputs("lcmcoord params: ", stderr);
    lcmc_safe_write(stderr, text, strlen(text), LCMC_SAFE_SPACE_LINES);
    fputc('\n', stderr);
    return LCMC_EXIT_USAGE;
}

static int parse_options(params_options *o, int argc, char **argv)
{
    static const char *const value_names[] = {"--vdu",    "--vnfc", "--operation",
                                              "--ssh-ip", "--vnfm", NULL};
    const char **targets[] = {&o->vdu, &o->vnfc, &o->operation, &o->ssh_ip, &o->vnfm};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            print_help();
            return 0;
        }
        if (strcmp(arg, "--old") == 0 || strcmp(arg, "--new") == 0) {
            *(arg[2] == 'o' ? &o->old : &o->new_flag) = 1;
            continue;
        }
        int matched = 0;
        for (int k = 0; value_names[k] != NULL && !matched; k++) {
            const char *value = NULL;
            if (!lcmc_host_value_option(argc, argv, &i, value_names[k], &value))
                continue;
            if (value == NULL || value[0] == '\0')
                return usage_error("option '%s' needs a value", arg);
            *targets[k] = value;
            matched = 1;
        }
        if (matched)
            continue;
        if (arg[0] == '-' && arg[1] != '\0') {
            static const char *const known[] = {"--vdu",  "--vnfc", "--operation", "--ssh-ip",
                                                "--vnfm", "--old",  "--new",       "--help"};
            const char *nearest = lcmc_host_nearest(arg, known, sizeof known / sizeof known[0]);
            if (nearest == NULL)
                return usage_error("unknown option '%s'", arg);
            char text[300];
            snprintf(text, sizeof text, "unknown option '%.200s'; did you mean '%s'?", arg,
                     nearest);
            return usage_error("%s", text);
        }
        if (o->file != NULL)
            return usage_error("unexpected argument '%s'", arg);
        o->file = arg;
    }
    if (o->old && o->new_flag)
        return usage_error("%s", "--new and --old exclude each other");
    return -1;
}

/* A random (version 4) UUID into text[37]; -1 when the kernel's generator fails. */
static int make_uuid(char text[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(text, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

/* The operation in upper case, when it is a LcmOperationForCoordType; else NULL. */
static const char *operation_type(const char *given, char *upper, size_t size)
{
    size_t n = strlen(given);
    if (n >= size)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        upper[i] = (char)toupper((unsigned char)given[i]);
    return lcmc_operation_type_is_valid(upper) ? upper : NULL;
}

/* The vdu_ids of the list, comma-separated, for an error naming the choices. */
static void list_vdus(const json_t *vdus, char *out, size_t size)
{
    size_t i;
    json_t *vdu;
    out[0] = '\0';
    json_array_foreach(vdus, i, vdu)
    {
        const char *id = json_string_value(json_object_get(vdu, "vdu_id"));
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", used > 0 ? ", " : "", id != NULL ? id : "?");
    }
}

/* Builds the parameters; prints them and returns 0, or reports why and returns 2. */
static int build(const params_options *o, json_t *input)
{
    json_t *additional = json_object_get(input, "additionalParams");
    if (additional == NULL)
        additional = input;
    if (!json_is_object(additional))
        return input_error("%s", "additionalParams is not a JSON object");
    json_t *vdus = json_object_get(additional, "vdu_params");
    if (!json_is_array(vdus) || json_array_size(vdus) == 0)
        return input_error("%s", "additionalParams has no vdu_params list (each item: vdu_id, "
                                 "new_vnfc_param, old_vnfc_param)");
    char choices[512];
    list_vdus(vdus, choices, sizeof choices);
    json_t *vdu = NULL;
    if (o->vdu == NULL) {
        if (json_array_size(vdus) > 1)
            return input_error("vdu_params has several VDUs: choose one with --vdu (%s)", choices);
        vdu = json_array_get(vdus, 0);
    } else {
        size_t i;
        json_t *item;
        json_array_foreach(vdus, i, item)
        {
            const char *id = json_string_value(json_object_get(item, "vdu_id"));
            if (vdu == NULL && id != NULL && strcmp(id, o->vdu) == 0)
                vdu = item;
        }
        if (vdu == NULL) {
            char text[sizeof choices + 128];
            snprintf(text, sizeof text, "no VDU '%.60s' in vdu_params (it has: %s)", o->vdu,
                     choices);
            return input_error("%s", text);
        }
    }
    if (!json_is_object(vdu))
        return input_error("%s", "an item of vdu_params is not a JSON object");
    const char *vdu_id = json_string_value(json_object_get(vdu, "vdu_id"));
    if (vdu_id == NULL || vdu_id[0] == '\0')
        return input_error("%s", "the VDU has no vdu_id string");
    const char *which = o->old ? "old_vnfc_param" : "new_vnfc_param";
    json_t *operator_params = json_object_get(vdu, which);
    if (!json_is_object(operator_params)) {
        char text[200];
        snprintf(text, sizeof text, "VDU '%.60s' has no %s object", vdu_id, which);
        return input_error("%s", text);
    }

    char upper[64];
    const char *operation =
        operation_type(o->operation ? o->operation : DEFAULT_OPERATION, upper, sizeof upper);
    if (operation == NULL)
        return input_error("--operation '%s' is not one of INSTANTIATE, SCALE, SCALE_TO_LEVEL, "
                           "CHANGE_FLAVOUR, TERMINATE, HEAL, OPERATE, CHANGE_EXT_CONN, "
                           "MODIFY_INFO, CREATE_SNAPSHOT, REVERT_TO_SNAPSHOT, CHANGE_VNFPKG "
                           "(any case)",
                           o->operation);
    const char *vnfm = o->vnfm ? o->vnfm : DEFAULT_VNFM;
    if (strncmp(vnfm, "http://", 7) != 0 && strncmp(vnfm, "https://", 8) != 0)
        return input_error("--vnfm '%s' is missing its scheme (http:// or https://)", vnfm);
    size_t vnfm_length = strlen(vnfm);
    while (vnfm_length > 0 && vnfm[vnfm_length - 1] == '/')
        vnfm_length--;

    char instance[37], occurrence[37], vnfd[37], vnfc[64];
    if (make_uuid(instance) || make_uuid(occurrence) || make_uuid(vnfd))
        return input_error("%s", "cannot make random ids: the kernel's generator failed");
    if (o->vnfc != NULL)
        snprintf(vnfc, sizeof vnfc, "%s", o->vnfc);
    else
        snprintf(vnfc, sizeof vnfc, "%.40s-%.8s", vdu_id, vnfd + 24);

    json_t *out = json_deep_copy(operator_params);
    char occurrence_href[600], instance_href[600];
    snprintf(occurrence_href, sizeof occurrence_href, "%.*s/vnflcm/v2/vnf_lcm_op_occs/%s",
             (int)(vnfm_length > 500 ? 500 : vnfm_length), vnfm, occurrence);
    snprintf(instance_href, sizeof instance_href, "%.*s/vnflcm/v2/vnf_instances/%s",
             (int)(vnfm_length > 500 ? 500 : vnfm_length), vnfm, instance);
    json_t *request =
        json_pack("{s:s, s:s, s:s, s:s, s:{s:{s:s}, s:{s:s}}}", "vnfInstanceId", instance,
                  "vnfLcmOpOccId", occurrence, "lcmOperationType", operation,
                  "coordinationActionName", "should_be_set_by_script", "_links", "vnfLcmOpOcc",
                  "href", occurrence_href, "vnfInstance", "href", instance_href);
    json_t *inst = json_pack("{s:s, s:s, s:s}", "id", instance, "vnfdId", vnfd,
                             "instantiationState", "INSTANTIATED");
    if (out == NULL || request == NULL || inst == NULL ||
        json_object_set_new(out, "ssh_ip", json_string(o->ssh_ip ? o->ssh_ip : DEFAULT_SSH_IP)) ||
        json_object_set_new(out, "is_rollback", json_boolean(o->old)) ||
        json_object_set_new(out, "vnfc_info_id", json_string(vnfc)) ||
        json_object_set_new(out, "inst", inst) ||
        json_object_set_new(out, "LcmCoordRequest", request)) {
        json_decref(out);
        return input_error("%s", "not enough memory");
    }
    char *text = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(out);
    if (text == NULL)
        return input_error("%s", "not enough memory");
    printf("%s\n", text);
    /* The operator's parameters hold passwords. */
    lcmc_free_wiped(text, strlen(text));
    if (fflush(stdout) != 0)
        return input_error("cannot write stdout: %s", strerror(errno));
    return 0;
}

int lcmc_params_main(int argc, char **argv)
{
    params_options o;
    memset(&o, 0, sizeof o);
    int rc = parse_options(&o, argc, argv);
    if (rc >= 0)
        return rc;
    FILE *in = stdin;
    const char *name = "stdin";
    if (o.file != NULL && strcmp(o.file, "-") != 0) {
        in = fopen(o.file, "rb");
        name = o.file;
        if (in == NULL) {
            fprintf(stderr, "lcmcoord params: cannot read %s: %s\n", o.file, strerror(errno));
            return LCMC_EXIT_USAGE;
        }
    }
    size_t length = 0;
    char *text = lcmc_read_all(in, INPUT_CAP, &length);
    int read_errno = errno;
    if (in != stdin)
        fclose(in);
    if (text == NULL) {
        fprintf(stderr, "lcmcoord params: cannot read %s: %s\n", name, strerror(read_errno));
        return LCMC_EXIT_USAGE;
    }
    char why[256];
    json_t *input = lcmc_json_parse(text, length, why, sizeof why);
    lcmc_free_wiped(text, length);
    if (input == NULL) {
        fprintf(stderr, "lcmcoord params: %s is not valid JSON: %s\n", name, why);
        return LCMC_EXIT_USAGE;
    }
    rc = json_is_object(input) ? build(&o, input)
                               : input_error("%s", "the input is not a JSON object");
    json_decref(input);
    return rc;
}
