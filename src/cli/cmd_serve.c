/* cmd_serve.c — `distilbert serve`: the HTTP service (src/server/). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "../server/server.h"
#include "cli.h"

static const char *const HELP =
    "usage: distilbert serve --model DIR [options]\n"
    "\n"
    "Serves the model over HTTP, in the manner of text-embeddings-inference (TEI):\n"
    "  POST /embed           {\"inputs\": str | [str], \"normalize\"?, \"truncate\"?}  → [[floats]]\n"
    "  POST /predict         {\"inputs\": str | [a, b] | [[a], [a, b], ...], \"raw_scores\"?, \"truncate\"?}\n"
    "                        → [{\"label\", \"score\"}, ...] best first (a list per input for a batch)\n"
    "  POST /tokenize        {\"inputs\": str | [str], \"add_special_tokens\"?} → [[{id, text, special, start, stop}]]\n"
    "  POST /v1/embeddings   OpenAI: {\"input\": str | [str], \"model\"?, \"encoding_format\"?}\n"
    "  POST /fill-mask, /ner, /qa   {\"inputs\": ..., \"parameters\": {...}} → the pipelines' JSON\n"
    "  GET  /health, /info, /metrics (Prometheus), /openapi.json\n"
    "A route needs its head: /predict a ...ForSequenceClassification model, /fill-mask ...ForMaskedLM,\n"
    "/ner ...ForTokenClassification, /qa ...ForQuestionAnswering (else 424). /embed pools the encoder of\n"
    "any model. Inputs of concurrent requests are batched together (--max-batch-tokens) and run by one\n"
    "inference thread that uses --threads cores. Errors are {\"error\": ..., \"error_type\": ...}: 400 empty,\n"
    "413 over a limit, 422 malformed, 424 route not served, 429 overloaded, 503 shutting down, 504 timeout.\n"
    "SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit.\n"
    "\n"
    "  --model DIR                a model folder (the head config.json names is loaded)\n"
    "  --model-id NAME            the name /info and /v1/embeddings report (default: the folder's name)\n"
    "  --host ADDR                address to listen on (default 127.0.0.1)\n"
    "  --port N                   port (default 8080; 0: any free port, printed on stderr)\n"
    "  --max-batch-tokens N       tokens per forward batch (default 16384; 1: no batching)\n"
    "  --max-batch-requests N     inputs per forward batch (default 256)\n"
    "  --no-batching              one input per forward pass (the same as --max-batch-tokens 1)\n"
    "  --max-concurrent N         requests in flight; more are answered 429 (default 512)\n"
    "  --max-input-length N       tokens per input (default: the model's limit); longer inputs are\n"
    "                             answered 413 unless the request says \"truncate\": true\n"
    "  --max-client-batch-size N  inputs per request (default 32); more → 413\n"
    "  --payload-limit BYTES      largest request body (default 2000000); more → 413\n"
    "  --threads N                inference threads (default: all cores)\n"
    "  --dtype T                  fp32 | bf16 | int8 for the encoder's Linear layers (default: the folder's)\n"
    "  --http-threads N           connection threads (default: min(4, cores))\n"
    "  --request-timeout S        seconds a request may wait for inference (default 60; 0: none) → 504\n"
    "  --shutdown-timeout S       seconds SIGTERM waits for requests in flight (default 30)\n"
    "  --verbose                  log each request on stderr\n";

static int num(const char *flag, const char *v, double min, double max, double *out) {
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d >= min && d <= max)) {
        fprintf(stderr, "distilbert: %s expects a number in [%g, %g], got \"%s\"\n", flag, min, max, v);
        return 0;
    }
    *out = d;
    return 1;
}

int cmd_serve(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},          {"model-id", required_argument, 0, 'I'},
        {"host", required_argument, 0, 'H'},           {"port", required_argument, 0, 'p'},
        {"max-batch-tokens", required_argument, 0, 'T'}, {"max-batch-requests", required_argument, 0, 'R'},
        {"no-batching", no_argument, 0, 'N'},          {"max-concurrent", required_argument, 0, 'c'},
        {"max-input-length", required_argument, 0, 'L'}, {"max-client-batch-size", required_argument, 0, 'B'},
        {"payload-limit", required_argument, 0, 'P'},  {"threads", required_argument, 0, 't'},
        {"http-threads", required_argument, 0, 'W'},   {"request-timeout", required_argument, 0, 'o'},
        {"shutdown-timeout", required_argument, 0, 'S'}, {"verbose", no_argument, 0, 'v'},
        {"dtype", required_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'},                 {0, 0, 0, 0}};
    srv_config cfg = srv_config_default();
    long v;
    double d;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': cfg.model_dir = optarg; break;
        case 'I': cfg.model_id = optarg; break;
        case 'H': cfg.host = optarg; break;
        case 'p': if (!cli_int("--port", optarg, 0, 65535, &v)) return 2; cfg.port = (int)v; break;
        case 'T': if (!cli_int("--max-batch-tokens", optarg, 1, 1 << 24, &v)) return 2; cfg.max_batch_tokens = (int)v; break;
        case 'R': if (!cli_int("--max-batch-requests", optarg, 1, 1 << 16, &v)) return 2; cfg.max_batch_requests = (int)v; break;
        case 'N': cfg.max_batch_tokens = 1; break;
        case 'c': if (!cli_int("--max-concurrent", optarg, 1, 1 << 16, &v)) return 2; cfg.max_concurrent = (int)v; break;
        case 'L': if (!cli_int("--max-input-length", optarg, 1, 1 << 20, &v)) return 2; cfg.max_input_length = (int)v; break;
        case 'B': if (!cli_int("--max-client-batch-size", optarg, 1, 1 << 16, &v)) return 2; cfg.max_client_batch_size = (int)v; break;
        case 'P': if (!cli_int("--payload-limit", optarg, 16, 1L << 30, &v)) return 2; cfg.payload_limit = (size_t)v; break;
        case 't': if (!cli_int("--threads", optarg, 1, 1024, &v)) return 2; cfg.threads = (int)v; break;
        case 'W': if (!cli_int("--http-threads", optarg, 1, 256, &v)) return 2; cfg.http_threads = (int)v; break;
        case 'o': if (!num("--request-timeout", optarg, 0, 86400, &d)) return 2; cfg.request_timeout = d; break;
        case 'S': if (!num("--shutdown-timeout", optarg, 0, 86400, &d)) return 2; cfg.shutdown_timeout = d; break;
        case 'v': cfg.verbose = 1; break;
        case 'D': {
            dbt_compute_dtype dt;
            if (dbt_compute_dtype_parse(optarg, &dt)) return cli_fail("serve", "unknown --dtype \"%s\" (fp32, bf16 or int8)", optarg);
            cfg.dtype = optarg;
            break;
        }
        case 'h': fputs(HELP, stdout); return 0;
        default: fputs(HELP, stderr); return 2;
        }
    }
    if (optind < argc) return cli_fail("serve", "unexpected argument \"%s\"", argv[optind]);
    if (!cfg.model_dir) return cli_fail("serve", "--model DIR is required");
    return srv_run(&cfg);
}
