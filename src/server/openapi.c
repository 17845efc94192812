/* openapi.c — /openapi.json. The document is written below with single quotes for legibility
 * (it has no apostrophes); they become double quotes before it is parsed. Paths the loaded model
 * does not serve are removed. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "openapi.h"

#define ERR(code, desc) "'" #code "':{'description':'" desc "','content':{'application/json':{'schema':{'$ref':'#/components/schemas/ErrorResponse'}}}}"
#define INFER_ERRORS                                                                                                \
    ERR(400, "Empty input") "," ERR(413, "Payload, batch or input length over the limits") "," ERR(               \
        422, "Malformed JSON, wrong types, tokenization error") "," ERR(424, "The model cannot serve this route, or inference failed") "," ERR(429, "Model is overloaded (--max-concurrent)") "," ERR(503, "Shutting down") "," ERR(504, "Not served within --request-timeout")
#define POST(summary, op, req, resp_desc, resp)                                                                     \
    "{'post':{'tags':['distilbert'],'summary':'" summary "','operationId':'" op "',"                                \
    "'requestBody':{'required':true,'content':{'application/json':{'schema':{'$ref':'#/components/schemas/" req     \
    "'}}}},'responses':{'200':{'description':'" resp_desc "','content':{'application/json':{'schema':" resp         \
    "}}}," INFER_ERRORS "}}}"
#define REF(name) "{'$ref':'#/components/schemas/" name "'}"
#define STR "{'type':'string'}"
#define STRS "{'type':'array','items':{'type':'string'}}"
#define TEXTS "{'oneOf':[" STR "," STRS "]}"
#define BOOL(def) "{'type':'boolean','default':" def "}"

static const char DOC[] =
    "{'openapi':'3.0.3',"
    "'info':{'title':'distilbert serve','description':'DistilBERT and BERT over HTTP, in the manner of "
    "text-embeddings-inference: embeddings, classification, tokenization, and the fill-mask, NER and question "
    "answering pipelines. Inputs of concurrent requests are batched dynamically.',"
    "'license':{'name':'MIT'},'version':'@VERSION@'},"
    "'paths':{"
    "'/embed':" POST("Sentence embeddings (pooled as the model folder says), L2-normalized unless normalize is false",
                     "embed", "EmbedRequest", "Embeddings", "{'type':'array','items':" REF("Embedding") "}") ","
    "'/predict':" POST("Sequence classification: every label with its score, best first",
                       "predict", "PredictRequest", "Predictions",
                       "{'oneOf':[{'type':'array','items':" REF("Prediction") "},{'type':'array','items':{'type':'array','items':" REF("Prediction") "}}]}") ","
    "'/tokenize':" POST("Tokenize inputs (byte offsets into each input)", "tokenize", "TokenizeRequest", "Tokens",
                        "{'type':'array','items':{'type':'array','items':" REF("SimpleToken") "}}") ","
    "'/v1/embeddings':{'post':{'tags':['distilbert'],'summary':'OpenAI-compatible embeddings','operationId':'openai_embed',"
    "'requestBody':{'required':true,'content':{'application/json':{'schema':" REF("OpenAICompatRequest") "}}},"
    "'responses':{'200':{'description':'Embeddings','content':{'application/json':{'schema':" REF("OpenAICompatResponse") "}}},"
    "'413':{'description':'Over the limits','content':{'application/json':{'schema':" REF("OpenAICompatErrorResponse") "}}},"
    "'422':{'description':'Malformed request','content':{'application/json':{'schema':" REF("OpenAICompatErrorResponse") "}}},"
    "'429':{'description':'Model is overloaded','content':{'application/json':{'schema':" REF("OpenAICompatErrorResponse") "}}}}}},"
    "'/fill-mask':" POST("Fill-mask pipeline: for each mask token, the top_k tokens", "fill_mask", "FillMaskRequest",
                         "A result per input (a list of candidates; one list per mask when there are several)",
                         "{'oneOf':[{'type':'array','items':" REF("FillMaskCandidate") "},{'type':'array','items':{}}]}") ","
    "'/ner':" POST("Token classification (named entities) with character offsets", "ner", "NerRequest",
                   "Entities per input", "{'oneOf':[{'type':'array','items':" REF("Entity") "},{'type':'array','items':{'type':'array','items':" REF("Entity") "}}]}") ","
    "'/qa':" POST("Extractive question answering", "qa", "QaRequest", "The answer (a list with top_k > 1)",
                  "{'oneOf':[" REF("Answer") ",{'type':'array','items':{}}]}") ","
    "'/health':{'get':{'tags':['distilbert'],'summary':'Health check','operationId':'health','responses':{"
    "'200':{'description':'Serving'}," ERR(503, "Shutting down") "}}},"
    "'/info':{'get':{'tags':['distilbert'],'summary':'The served model and the limits','operationId':'info',"
    "'responses':{'200':{'description':'Model info','content':{'application/json':{'schema':" REF("Info") "}}}}}},"
    "'/metrics':{'get':{'tags':['distilbert'],'summary':'Prometheus metrics','operationId':'metrics',"
    "'responses':{'200':{'description':'Prometheus text format','content':{'text/plain':{'schema':" STR "}}}}}},"
    "'/openapi.json':{'get':{'tags':['distilbert'],'summary':'This document','operationId':'openapi',"
    "'responses':{'200':{'description':'OpenAPI 3 document','content':{'application/json':{'schema':{'type':'object'}}}}}}}"
    "},"
    "'components':{'schemas':{"
    "'ErrorResponse':{'type':'object','required':['error','error_type'],'properties':{'error':" STR ",'error_type':" STR "}},"
    "'OpenAICompatErrorResponse':{'type':'object','required':['message','code','type'],'properties':{'message':" STR
    ",'code':{'type':'integer'},'type':" STR "}},"
    "'Embedding':{'type':'array','items':{'type':'number','format':'float'}},"
    "'EmbedRequest':{'type':'object','required':['inputs'],'properties':{'inputs':" TEXTS ",'normalize':" BOOL("true")
    ",'truncate':" BOOL("false") ",'truncation_direction':{'type':'string','enum':['right']}}},"
    "'PredictInput':{'description':'A text, a pair [text, text], or a batch [[text], [text, text], ...]','oneOf':[" STR
    ",{'type':'array','items':" STR ",'minItems':1,'maxItems':2},{'type':'array','items':{'type':'array','items':" STR
    ",'minItems':1,'maxItems':2}}]},"
    "'PredictRequest':{'type':'object','required':['inputs'],'properties':{'inputs':" REF("PredictInput")
    ",'raw_scores':" BOOL("false") ",'truncate':" BOOL("false") "}},"
    "'Prediction':{'type':'object','required':['label','score'],'properties':{'label':" STR ",'score':{'type':'number'}}},"
    "'TokenizeRequest':{'type':'object','required':['inputs'],'properties':{'inputs':" TEXTS
    ",'add_special_tokens':" BOOL("true") "}},"
    "'SimpleToken':{'type':'object','required':['id','text','special'],'properties':{'id':{'type':'integer','minimum':0},"
    "'text':" STR ",'special':{'type':'boolean'},'start':{'type':'integer','nullable':true,'description':'byte offset'},"
    "'stop':{'type':'integer','nullable':true,'description':'byte offset, exclusive'}}},"
    "'OpenAICompatRequest':{'type':'object','required':['input'],'properties':{'input':" TEXTS
    ",'model':{'type':'string','nullable':true},'user':{'type':'string','nullable':true},"
    "'encoding_format':{'type':'string','enum':['float','base64'],'default':'float'}}},"
    "'OpenAICompatResponse':{'type':'object','required':['object','data','model','usage'],'properties':{"
    "'object':{'type':'string','example':'list'},'data':{'type':'array','items':{'type':'object',"
    "'required':['object','embedding','index'],'properties':{'object':{'type':'string','example':'embedding'},"
    "'embedding':{'oneOf':[" REF("Embedding") "," STR "]},'index':{'type':'integer'}}}},'model':" STR ","
    "'usage':{'type':'object','required':['prompt_tokens','total_tokens'],'properties':{'prompt_tokens':{'type':'integer'},"
    "'total_tokens':{'type':'integer'}}}}},"
    "'FillMaskRequest':{'type':'object','required':['inputs'],'properties':{'inputs':" TEXTS ",'truncate':" BOOL("false")
    ",'parameters':{'type':'object','properties':{'top_k':{'type':'integer','minimum':1,'default':5}},'additionalProperties':false}}},"
    "'FillMaskCandidate':{'type':'object','properties':{'score':{'type':'number'},'token':{'type':'integer'},"
    "'token_str':" STR ",'sequence':" STR "}},"
    "'NerRequest':{'type':'object','required':['inputs'],'properties':{'inputs':" TEXTS ",'truncate':" BOOL("false")
    ",'parameters':{'type':'object','properties':{'aggregation_strategy':{'type':'string',"
    "'enum':['none','simple','first','average','max'],'default':'none'}},'additionalProperties':false}}},"
    "'Entity':{'type':'object','properties':{'entity':" STR ",'entity_group':" STR ",'score':{'type':'number'},"
    "'index':{'type':'integer'},'word':" STR ",'start':{'type':'integer'},'end':{'type':'integer'}}},"
    "'QaInput':{'type':'object','required':['question','context'],'properties':{'question':" STR ",'context':" STR "}},"
    "'QaRequest':{'type':'object','required':['inputs'],'properties':{'inputs':{'oneOf':[" REF("QaInput")
    ",{'type':'array','items':" REF("QaInput") "}]},'parameters':{'type':'object','properties':{"
    "'top_k':{'type':'integer','minimum':1,'default':1},'doc_stride':{'type':'integer','minimum':0},"
    "'max_answer_len':{'type':'integer','minimum':1,'default':15},'max_question_len':{'type':'integer','minimum':1,'default':64},"
    "'max_seq_len':{'type':'integer','minimum':1,'default':384},'handle_impossible_answer':" BOOL("false")
    "},'additionalProperties':false}}},"
    "'Answer':{'type':'object','properties':{'score':{'type':'number'},'start':{'type':'integer'},"
    "'end':{'type':'integer'},'answer':" STR "}},"
    "'Info':{'type':'object','properties':{'model_id':" STR ",'model_dir':" STR ",'model_dtype':" STR
    ",'model_type':{'type':'object'},'model_family':" STR ",'architecture':" STR ",'max_input_length':{'type':'integer'},"
    "'max_concurrent_requests':{'type':'integer'},'max_batch_tokens':{'type':'integer'},'max_client_batch_size':{'type':'integer'},"
    "'version':" STR ",'routes':" STRS "}}"
    "}}}";

char *srv_openapi_json(int (*enabled)(const char *path, void *ud), void *ud, const char *version, size_t *len) {
    char *t = strdup(DOC);
    if (!t) return NULL;
    for (char *p = t; *p; p++)
        if (*p == '\'') *p = '"';
    cJSON *doc = cJSON_Parse(t);
    free(t);
    if (!doc) return NULL;
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "info"), "version",
                                           cJSON_CreateString(version));
    cJSON *paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
    if (enabled) {
        cJSON *p = paths ? paths->child : NULL;
        while (p) {
            cJSON *next = p->next;
            if (!enabled(p->string, ud)) cJSON_Delete(cJSON_DetachItemViaPointer(paths, p));
            p = next;
        }
    }
    char *s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (s) *len = strlen(s);
    return s;
}
