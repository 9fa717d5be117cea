// Command godecode reads request bodies the way Ollama does, with Ollama's own Go types,
// and prints what Ollama would act on. The worker's tests use it to prove that what the
// worker forwards names only a shared model and stays within the owner's ceilings, as
// Ollama itself sees it: Go's encoding/json matches keys case-insensitively (Unicode
// simple folding) and lets the last of two matching keys win, which a Python check cannot
// see.
//
// Input: one JSON object per line, {"endpoint": "/api/chat", "body": "<the body text>"}.
// Output: one JSON object per line, the decoded view (see view below), or {"error": ...}
// where Ollama would refuse the body with 400.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/openai"
)

type input struct {
	Op       string   `json:"op"` // "" reads a body; "bridge" runs the OpenAI middleware (bridge.go)
	Endpoint string   `json:"endpoint"`
	Body     string   `json:"body"`
	Worker   string   `json:"worker"`
	Native   []string `json:"native"`
}

// view is what of a request reaches past the model's answer on the owner's machine.
type view struct {
	Error           string         `json:"error,omitempty"`
	Model           string         `json:"model"`
	KeepAlive       *float64       `json:"keep_alive"` // seconds; -1 means forever; null: Ollama's default
	Options         map[string]any `json:"options"`    // as Ollama keeps them (exact names)
	NumCtx          int            `json:"num_ctx"`    // effective, after Ollama's defaults
	NumPredict      int            `json:"num_predict"`
	NumGPU          int            `json:"num_gpu"`
	NumThread       int            `json:"num_thread"`
	NumBatch        int            `json:"num_batch"`
	MainGPU         int            `json:"main_gpu"`
	UseMMap         *bool          `json:"use_mmap"`
	Template        string         `json:"template"`
	Raw             bool           `json:"raw"`
	DebugRenderOnly bool           `json:"debug_render_only"`
	Images          []int          `json:"images"` // decoded size of each image
	Steps           int32          `json:"steps"`
}

func seconds(d *api.Duration) *float64 {
	if d == nil {
		return nil
	}
	s := d.Duration.Seconds()
	if d.Duration == time.Duration(math.MaxInt64) {
		s = -1
	}
	return &s
}

func (v *view) options(m map[string]any) error {
	v.Options = m
	opts := api.DefaultOptions()
	if err := opts.FromMap(m); err != nil {
		return err
	}
	v.NumCtx, v.NumPredict, v.NumGPU = opts.NumCtx, opts.NumPredict, opts.NumGPU
	v.NumThread, v.NumBatch, v.MainGPU, v.UseMMap = opts.NumThread, opts.NumBatch, opts.MainGPU, opts.UseMMap
	return nil
}

func (v *view) messages(msgs []api.Message) {
	for _, m := range msgs {
		for _, img := range m.Images {
			v.Images = append(v.Images, len(img))
		}
	}
}

func (v *view) chat(r *api.ChatRequest) error {
	v.Model, v.KeepAlive, v.DebugRenderOnly = r.Model, seconds(r.KeepAlive), r.DebugRenderOnly
	v.messages(r.Messages)
	return v.options(r.Options)
}

func (v *view) generate(r *api.GenerateRequest) error {
	v.Model, v.KeepAlive, v.DebugRenderOnly = r.Model, seconds(r.KeepAlive), r.DebugRenderOnly
	v.Template, v.Raw, v.Steps = r.Template, r.Raw, r.Steps
	for _, img := range r.Images {
		v.Images = append(v.Images, len(img))
	}
	return v.options(r.Options)
}

// reencode does what Ollama's OpenAI middleware does with the converted request: it
// encodes it as JSON and hands it to the native handler, which decodes it again.
func reencode(from any, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}

func decode(in input) (v view, err error) {
	body := []byte(in.Body)
	switch in.Endpoint {
	case "/api/chat":
		var r api.ChatRequest
		if err = json.Unmarshal(body, &r); err == nil {
			err = v.chat(&r)
		}
	case "/api/generate":
		var r api.GenerateRequest
		if err = json.Unmarshal(body, &r); err == nil {
			err = v.generate(&r)
		}
	case "/api/embed":
		var r api.EmbedRequest
		if err = json.Unmarshal(body, &r); err == nil {
			v.Model, v.KeepAlive = r.Model, seconds(r.KeepAlive)
			err = v.options(r.Options)
		}
	case "/api/embeddings":
		var r api.EmbeddingRequest
		if err = json.Unmarshal(body, &r); err == nil {
			v.Model, v.KeepAlive = r.Model, seconds(r.KeepAlive)
			err = v.options(r.Options)
		}
	case "/v1/chat/completions":
		// Ollama's OpenAI middleware: decode, then convert to the native request it runs.
		var r openai.ChatCompletionRequest
		if err = json.Unmarshal(body, &r); err == nil {
			var chat *api.ChatRequest
			if chat, err = openai.FromChatRequest(r); err == nil {
				var native api.ChatRequest
				if err = reencode(chat, &native); err == nil {
					err = v.chat(&native)
				}
			}
		}
	case "/v1/completions":
		var r openai.CompletionRequest
		if err = json.Unmarshal(body, &r); err == nil {
			var gen api.GenerateRequest
			if gen, err = openai.FromCompleteRequest(r); err == nil {
				var native api.GenerateRequest
				if err = reencode(gen, &native); err == nil {
					err = v.generate(&native)
				}
			}
		}
	case "/v1/embeddings":
		var r openai.EmbedRequest
		if err = json.Unmarshal(body, &r); err == nil {
			v.Model = r.Model
			err = v.options(nil)
		}
	default:
		err = fmt.Errorf("unknown endpoint %q", in.Endpoint)
	}
	return v, err
}

func main() {
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 256<<20)
	out := json.NewEncoder(os.Stdout)
	for scanner.Scan() {
		var in input
		if err := json.Unmarshal(scanner.Bytes(), &in); err != nil {
			fmt.Fprintln(os.Stderr, "godecode: bad input line:", err)
			os.Exit(2)
		}
		if in.Op == "bridge" {
			if err := out.Encode(bridge(bridgeIn{in.Endpoint, in.Body, in.Worker, in.Native})); err != nil {
				os.Exit(3)
			}
			continue
		}
		v, err := decode(in)
		if err != nil {
			v = view{Error: err.Error()}
		}
		if err := out.Encode(v); err != nil {
			os.Exit(3)
		}
	}
}
