package main

// The bridge check: what Ollama's own OpenAI middleware makes of a /v1 request and of
// the native answer, for the worker's tests to compare with the worker's translation
// (ghubai_tray/core/openai_bridge.py). The middleware runs for real, in a gin engine,
// with a handler standing in for Ollama's native one: it records the native request
// the middleware hands on and writes the native answer it is given, one Write per
// line (as Ollama's streamResponse does) or the whole body once (as c.JSON does).

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"
	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/middleware"
)

type bridgeIn struct {
	Endpoint string   `json:"endpoint"`
	Body     string   `json:"body"`   // the OpenAI body, as the client sent it
	Worker   string   `json:"worker"` // the native body the worker posts instead, if any
	Native   []string `json:"native"` // the native answer: each item one Write
}

type bridgeOut struct {
	Status int    `json:"status"`
	Ollama string `json:"ollama"` // the native request the middleware made, normalised
	Worker string `json:"worker"` // the worker's native request, normalised the same way
	Answer string `json:"answer"` // what Ollama's writer wrote back
}

// normalise decodes a native request with Ollama's own type and writes it again; the
// worker's copy loses what only the worker adds (the owner's context and keep-alive).
func normalise(endpoint string, body []byte, worker bool) string {
	var request interface{}
	var options *map[string]any
	var keepAlive **api.Duration
	var format *json.RawMessage
	switch endpoint {
	case "/v1/chat/completions":
		var r api.ChatRequest
		request, options, keepAlive, format = &r, &r.Options, &r.KeepAlive, &r.Format
	case "/v1/completions":
		var r api.GenerateRequest
		request, options, keepAlive, format = &r, &r.Options, &r.KeepAlive, &r.Format
	default:
		var r api.EmbedRequest
		request, options, keepAlive = &r, &r.Options, &r.KeepAlive
	}
	if err := json.Unmarshal(body, request); err != nil {
		return "error: " + err.Error()
	}
	if worker {
		delete(*options, "num_ctx")
		if len(*options) == 0 {
			*options = nil
		}
		*keepAlive = nil
	}
	if format != nil && len(*format) > 0 {
		var value any // the schema as a value: how its numbers are spelled does not matter
		if err := json.Unmarshal(*format, &value); err == nil {
			*format, _ = json.Marshal(value)
		}
	}
	b, err := json.Marshal(request)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

func bridge(in bridgeIn) bridgeOut {
	var out bridgeOut
	var handler gin.HandlerFunc
	switch in.Endpoint {
	case "/v1/chat/completions":
		handler = middleware.ChatMiddleware()
	case "/v1/completions":
		handler = middleware.CompletionsMiddleware()
	case "/v1/embeddings":
		handler = middleware.EmbeddingsMiddleware()
	default:
		return bridgeOut{Status: -1, Answer: "unknown endpoint " + in.Endpoint}
	}
	engine := gin.New()
	engine.POST(in.Endpoint, handler, func(c *gin.Context) {
		made, _ := io.ReadAll(c.Request.Body)
		out.Ollama = normalise(in.Endpoint, made, false)
		c.Status(http.StatusOK)
		for _, part := range in.Native {
			if _, err := c.Writer.Write([]byte(part)); err != nil {
				out.Answer = "write error: " + err.Error()
				return
			}
		}
	})
	recorder := httptest.NewRecorder()
	request := httptest.NewRequest(http.MethodPost, in.Endpoint, bytes.NewReader([]byte(in.Body)))
	request.Header.Set("Content-Type", "application/json")
	engine.ServeHTTP(recorder, request)
	out.Status = recorder.Code
	if out.Answer == "" {
		out.Answer = recorder.Body.String()
	}
	if in.Worker != "" {
		out.Worker = normalise(in.Endpoint, []byte(in.Worker), true)
	}
	return out
}

func init() {
	gin.SetMode(gin.ReleaseMode)
}
