/* cmd_quantize.c — `distilbert quantize`: a reduced-precision copy of a model folder. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char *const HELP =
    "usage: distilbert quantize --model DIR --out DIR --dtype int8|bf16|f16\n"
    "\n"
    "Writes a copy of the model folder with smaller weights, which every subcommand loads directly:\n"
    "  int8   the encoder's Linear weights (attention q, k, v, output; the FFN's two layers) as int8,\n"
    "         one scale per output row (\"<name>.weight_scale\"); the rest unchanged. It runs with\n"
    "         int8 dynamic quantization (--dtype int8) by default. config.json gets\n"
    "         \"quantization_config\": {\"quant_method\": \"distilbert.c\", \"dtype\": \"int8\"}.\n"
    "  bf16   every floating-point tensor as bfloat16: a plain Hugging Face folder (transformers\n"
    "  f16    loads it); this engine widens it to fp32 (add --dtype bf16 to compute in bf16).\n"
    "Tokenizer and sentence-transformers files are copied.\n"
    "\n"
    "  --model DIR   the source folder (F32, F16 or BF16 safetensors)\n"
    "  --out DIR     the folder to write (created; files in it are replaced)\n"
    "  --dtype T     int8 | bf16 | f16\n";

int cmd_quantize(int argc, char **argv) {
    static const struct option longopts[] = {{"model", required_argument, 0, 'm'}, {"out", required_argument, 0, 'o'},
                                             {"dtype", required_argument, 0, 'D'}, {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    const char *model = NULL, *out = NULL, *dtype = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case 'D': dtype = optarg; break;
        case 'h': fputs(HELP, stdout); return 0;
        default: fputs(HELP, stderr); return 2;
        }
    }
    if (optind < argc) return cli_fail("quantize", "unexpected argument \"%s\"", argv[optind]);
    if (!model || !out || !dtype) {
        fputs(HELP, stderr);
        return 2;
    }
    if (dbt_quantize_folder(model, out, dtype)) return cli_fail("quantize", "%s", dbt_last_error());
    fprintf(stderr, "distilbert quantize: wrote %s (%s)\n", out, dtype);
    return 0;
}
