namespace DeepSeekRL.Silo.Api;

/// <summary>The API's OpenAPI 3 description, served at <c>/openapi.json</c>.</summary>
internal static class OpenApi
{
    /// <summary>The document.</summary>
    public const string Document = """
{
 "openapi": "3.0.3",
 "info": {
  "title": "DeepSeekRL API",
  "version": "1"
 },
 "components": {
  "securitySchemes": {
   "bearer": {
    "type": "http",
    "scheme": "bearer"
   }
  }
 },
 "paths": {
  "/api/health": {
   "get": {
    "summary": "liveness",
    "responses": {
     "200": {
      "description": "OK"
     },
     "400": {
      "description": "bad input: {\"error\": message}"
     },
     "404": {
      "description": "unknown campaign"
     }
    }
   }
  },
  "/api/campaigns": {
   "get": {
    "summary": "campaigns, newest first",
    "responses": {
     "200": {
      "description": "OK"
     },
     "400": {
      "description": "bad input: {\"error\": message}"
     },
     "404": {
      "description": "unknown campaign"
     }
    }
   },
   "post": {
    "summary": "create a campaign from a spec (JSON body, docs/campaign-spec.md; every path inside the server's data root, --data-root, default examples/; relative paths resolve against it)",
    "responses": {
     "201": {
      "description": "created: {id, train_rows, eval_rows, warnings}"
     },
     "400": {
      "description": "invalid spec: {error, errors}"
     },
     "413": {
      "description": "spec over 1 MiB"
     },
     "401": {
      "description": "missing or wrong bearer token"
     }
    },
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "type": "object"
       }
      }
     }
    },
    "security": [
     {
      "bearer": []
     }
    ]
   }
  },
  "/api/campaigns/{id}": {
   "get": {
    "summary": "status, counters and evaluations",
    "responses": {
     "200": {
      "description": "OK"
     },
     "400": {
      "description": "bad input: {\"error\": message}"
     },
     "404": {
      "description": "unknown campaign"
     }
    },
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "schema": {
       "type": "integer",
       "minimum": 1
      }
     }
    ]
   }
  },
  "/api/campaigns/{id}/steps": {
   "get": {
    "summary": "step metrics, by step",
    "responses": {
     "200": {
      "description": "OK"
     },
     "400": {
      "description": "bad input: {\"error\": message}"
     },
     "404": {
      "description": "unknown campaign"
     }
    },
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "schema": {
       "type": "integer",
       "minimum": 1
      }
     }
    ]
   }
  },
  "/api/campaigns/{id}/evaluations": {
   "get": {
    "summary": "evaluations, by step",
    "responses": {
     "200": {
      "description": "OK"
     },
     "400": {
      "description": "bad input: {\"error\": message}"
     },
     "404": {
      "description": "unknown campaign"
     }
    },
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "schema": {
       "type": "integer",
       "minimum": 1
      }
     }
    ]
   }
  },
  "/api/campaigns/{id}/policies": {
   "get": {
    "summary": "policy versions",
    "responses": {
     "200": {
      "description": "OK"
     },
     "400": {
      "description": "bad input: {\"error\": message}"
     },
     "404": {
      "description": "unknown campaign"
     }
    },
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "schema": {
       "type": "integer",
       "minimum": 1
      }
     }
    ]
   }
  },
  "/api/campaigns/{id}/samples": {
   "get": {
    "summary": "completions with scores and verdicts, keyset-paged by id",
    "responses": {
     "200": {
      "description": "OK"
     },
     "400": {
      "description": "bad input: {\"error\": message}"
     },
     "404": {
      "description": "unknown campaign"
     }
    },
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "schema": {
       "type": "integer",
       "minimum": 1
      }
     },
     {
      "name": "limit",
      "in": "query",
      "required": false,
      "schema": {
       "type": "integer"
      },
      "description": "1..500, default 50"
     },
     {
      "name": "after_id",
      "in": "query",
      "required": false,
      "schema": {
       "type": "integer"
      },
      "description": "next_after_id of the previous page"
     },
     {
      "name": "step",
      "in": "query",
      "required": false,
      "schema": {
       "type": "integer"
      },
      "description": "only this step"
     },
     {
      "name": "rule",
      "in": "query",
      "required": false,
      "schema": {
       "type": "string"
      },
      "description": "a rule name, or 'reward' for the total"
     },
     {
      "name": "min",
      "in": "query",
      "required": false,
      "schema": {
       "type": "number"
      },
      "description": "rule score at least"
     },
     {
      "name": "max",
      "in": "query",
      "required": false,
      "schema": {
       "type": "number"
      },
      "description": "rule score at most"
     },
     {
      "name": "accepted",
      "in": "query",
      "required": false,
      "schema": {
       "type": "boolean"
      },
      "description": "accepted by rejection sampling or not"
     },
     {
      "name": "q",
      "in": "query",
      "required": false,
      "schema": {
       "type": "string"
      },
      "description": "text search in prompt and completion (at most 200 characters)"
     },
     {
      "name": "reflection",
      "in": "query",
      "required": false,
      "schema": {
       "type": "string",
       "enum": [
        "verify",
        "detect",
        "repair"
       ]
      },
      "description": "only completions that verify (a check line), detect a mistake (a failed check) or repair one (a failed check, a later passing one, a correct answer)"
     }
    ]
   }
  },
  "/api/campaigns/{id}/export": {
   "get": {
    "summary": "accepted samples as chat-format JSONL (download)",
    "responses": {
     "200": {
      "description": "OK"
     },
     "400": {
      "description": "bad input: {\"error\": message}"
     },
     "404": {
      "description": "unknown campaign"
     }
    },
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "schema": {
       "type": "integer",
       "minimum": 1
      }
     }
    ]
   }
  },
  "/api/campaigns/{id}/pause": {
   "post": {
    "summary": "pause",
    "responses": {
     "200": {
      "description": "OK"
     },
     "400": {
      "description": "bad input: {\"error\": message}"
     },
     "404": {
      "description": "unknown campaign"
     },
     "401": {
      "description": "missing or wrong bearer token"
     },
     "409": {
      "description": "not allowed in the campaign's state"
     }
    },
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "schema": {
       "type": "integer",
       "minimum": 1
      }
     }
    ],
    "security": [
     {
      "bearer": []
     }
    ]
   }
  },
  "/api/campaigns/{id}/resume": {
   "post": {
    "summary": "resume",
    "responses": {
     "200": {
      "description": "OK"
     },
     "400": {
      "description": "bad input: {\"error\": message}"
     },
     "404": {
      "description": "unknown campaign"
     },
     "401": {
      "description": "missing or wrong bearer token"
     },
     "409": {
      "description": "not allowed in the campaign's state"
     }
    },
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "schema": {
       "type": "integer",
       "minimum": 1
      }
     }
    ],
    "security": [
     {
      "bearer": []
     }
    ]
   }
  },
  "/api/campaigns/{id}/cancel": {
   "post": {
    "summary": "cancel",
    "responses": {
     "200": {
      "description": "OK"
     },
     "400": {
      "description": "bad input: {\"error\": message}"
     },
     "404": {
      "description": "unknown campaign"
     },
     "401": {
      "description": "missing or wrong bearer token"
     },
     "409": {
      "description": "not allowed in the campaign's state"
     }
    },
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "schema": {
       "type": "integer",
       "minimum": 1
      }
     }
    ],
    "security": [
     {
      "bearer": []
     }
    ]
   }
  },
  "/api/nodes": {
   "get": {
    "summary": "the Orleans silos of the database's clusters (membership rows: address, generation, roles, status) with their item and singleton leases and, for the API's own cluster, grain activations by type",
    "responses": {
     "200": {
      "description": "OK"
     },
     "400": {
      "description": "bad input: {\"error\": message}"
     },
     "404": {
      "description": "unknown campaign"
     }
    }
   }
  }
 }
}
""";
}
