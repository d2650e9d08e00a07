// Command render renders a Helm chart the way `helm template` does, for the chart
// tests. Helm itself cannot be installed on the test machines (no network, no
// binary in the Debian archive), but Helm is Go's text/template plus the sprig
// function library plus a handful of functions and objects of its own. This
// program supplies those additions on top of the real text/template and sprig,
// so the chart is executed by the same engine it meets in a real install:
//
//   - .Values (the chart's values.yaml deep-merged with -f files, Helm's rules),
//     .Release, .Chart, .Capabilities, .Files and .Template;
//   - include, tpl, required, fail, lookup, toYaml, fromYaml, fromYamlArray,
//     toJson, fromJson, fromJsonArray, and the removal of sprig's env and expandenv;
//   - missingkey=zero and the "<no value>" clean-up of Helm's non-strict mode.
//
// lookup reads a JSON "cluster state" file (a list of objects). Without one it
// returns an empty map, as `helm template` does.
//
// Build (no network): GOPATH=/usr/share/gocode GO111MODULE=off go build
//
// Output: the rendered manifests on stdout as YAML documents, each preceded by
// a "# Source: <chart>/templates/<file>" comment. On a template error (fail,
// required, a syntax error) the message goes to stderr and the exit code is 1.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

// maxIncludeDepth matches Helm's guard against a named template including itself forever.
const maxIncludeDepth = 1000

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

type options struct {
	chartDir    string
	valueFiles  stringList
	apiVersions stringList
	clusterFile string
	notesOut    string
	valuesOut   string
	releaseName string
	namespace   string
	kubeVersion string
	upgrade     bool
}

func main() {
	var opts options
	flag.StringVar(&opts.chartDir, "chart", "", "chart directory (required)")
	flag.Var(&opts.valueFiles, "f", "values file merged over values.yaml; repeatable, later files win")
	flag.Var(&opts.apiVersions, "api-versions", "extra API version for .Capabilities.APIVersions, such as monitoring.coreos.com/v1; repeatable")
	flag.StringVar(&opts.clusterFile, "cluster", "", "JSON file with a list of objects that lookup returns")
	flag.StringVar(&opts.notesOut, "notes", "", "write the rendered NOTES.txt to this file")
	flag.StringVar(&opts.valuesOut, "values-out", "", "write the merged values as JSON to this file")
	flag.StringVar(&opts.releaseName, "name", "infergate", "release name")
	flag.StringVar(&opts.namespace, "namespace", "default", "release namespace")
	flag.StringVar(&opts.kubeVersion, "kube-version", "v1.31.0", "Kubernetes version for .Capabilities.KubeVersion")
	flag.BoolVar(&opts.upgrade, "upgrade", false, "render as an upgrade (Release.IsUpgrade, revision 2) instead of an install")
	flag.Parse()

	if opts.chartDir == "" {
		fmt.Fprintln(os.Stderr, "Error: -chart is required")
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func run(opts options) error {
	chartMeta, err := readYAMLMap(filepath.Join(opts.chartDir, "Chart.yaml"))
	if err != nil {
		return err
	}
	chartName, _ := chartMeta["name"].(string)
	if chartName == "" {
		return errors.New("Chart.yaml: name is missing")
	}

	values, err := readYAMLMap(filepath.Join(opts.chartDir, "values.yaml"))
	if err != nil {
		return err
	}
	for _, file := range opts.valueFiles {
		override, err := readYAMLMap(file)
		if err != nil {
			return err
		}
		values = coalesce(override, values)
	}
	if opts.valuesOut != "" {
		encoded, err := json.MarshalIndent(values, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(opts.valuesOut, encoded, 0o644); err != nil {
			return err
		}
	}

	cluster, err := readCluster(opts.clusterFile)
	if err != nil {
		return err
	}

	templates, files, err := readChartFiles(opts.chartDir, chartName)
	if err != nil {
		return err
	}

	revision := 1
	if opts.upgrade {
		revision = 2
	}
	top := map[string]interface{}{
		"Values": values,
		"Release": map[string]interface{}{
			"Name":      opts.releaseName,
			"Namespace": opts.namespace,
			"Service":   "Helm",
			"IsInstall": !opts.upgrade,
			"IsUpgrade": opts.upgrade,
			"Revision":  revision,
		},
		"Chart":        chartObject(chartMeta),
		"Capabilities": capabilities(opts.kubeVersion, opts.apiVersions),
		"Files":        files,
	}

	engine := newEngine(cluster)
	if err := engine.parse(templates); err != nil {
		return err
	}

	var out bytes.Buffer
	for _, name := range sortedKeys(templates) {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") {
			continue
		}
		rendered, err := engine.render(name, withTemplate(top, name, chartName))
		if err != nil {
			return err
		}
		if base == "NOTES.txt" {
			if opts.notesOut != "" {
				if err := os.WriteFile(opts.notesOut, []byte(rendered), 0o644); err != nil {
					return err
				}
			}
			continue
		}
		writeDocuments(&out, name, rendered)
	}
	_, err = os.Stdout.Write(out.Bytes())
	return err
}

// engine holds one template set for the whole chart, so include and tpl see every
// named template, as in Helm.
type engine struct {
	set          *template.Template
	cluster      []map[string]interface{}
	includeDepth int
}

func newEngine(cluster []map[string]interface{}) *engine {
	e := &engine{cluster: cluster}
	e.set = template.New("chart").Option("missingkey=zero").Funcs(e.funcMap())
	return e
}

func (e *engine) parse(templates map[string]string) error {
	for _, name := range sortedKeys(templates) {
		if _, err := e.set.New(name).Parse(templates[name]); err != nil {
			return fmt.Errorf("parse error in %s: %w", name, err)
		}
	}
	return nil
}

func (e *engine) render(name string, data interface{}) (string, error) {
	var buf bytes.Buffer
	if err := e.set.ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
}

func (e *engine) funcMap() template.FuncMap {
	funcs := sprig.TxtFuncMap()
	// Helm removes these so a chart cannot read the environment of the machine running helm.
	delete(funcs, "env")
	delete(funcs, "expandenv")

	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = fromYAML
	funcs["fromYamlArray"] = fromYAMLArray
	funcs["toJson"] = toJSON
	funcs["fromJson"] = fromJSON
	funcs["fromJsonArray"] = fromJSONArray
	funcs["required"] = required
	funcs["fail"] = func(message string) (string, error) { return "", errors.New(message) }
	funcs["lookup"] = e.lookup
	funcs["include"] = e.include
	funcs["tpl"] = e.tpl
	return funcs
}

func (e *engine) include(name string, data interface{}) (string, error) {
	if e.includeDepth >= maxIncludeDepth {
		return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
	}
	e.includeDepth++
	defer func() { e.includeDepth-- }()
	var buf bytes.Buffer
	if err := e.set.ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// tpl renders a string as a template with the chart's named templates in scope.
func (e *engine) tpl(text string, data interface{}) (string, error) {
	clone, err := e.set.Clone()
	if err != nil {
		return "", err
	}
	parsed, err := clone.New("tpl").Parse(text)
	if err != nil {
		return "", fmt.Errorf("cannot parse template %q: %w", text, err)
	}
	var buf bytes.Buffer
	if err := parsed.Execute(&buf, data); err != nil {
		return "", err
	}
	return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
}

// lookup mirrors Helm's: a single object as a map, or a List with items when name
// is empty, and an empty map when nothing matches.
func (e *engine) lookup(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
	var items []interface{}
	for _, object := range e.cluster {
		if object["apiVersion"] != apiVersion || object["kind"] != kind {
			continue
		}
		metadata, _ := object["metadata"].(map[string]interface{})
		objectNamespace, _ := metadata["namespace"].(string)
		objectName, _ := metadata["name"].(string)
		if namespace != "" && objectNamespace != namespace {
			continue
		}
		if name != "" {
			if objectName == name {
				return deepCopy(object), nil
			}
			continue
		}
		items = append(items, deepCopy(object))
	}
	if name != "" {
		return map[string]interface{}{}, nil
	}
	if items == nil {
		items = []interface{}{}
	}
	return map[string]interface{}{"apiVersion": "v1", "kind": kind + "List", "items": items}, nil
}

func required(warning string, value interface{}) (interface{}, error) {
	if value == nil {
		return value, errors.New(warning)
	}
	if text, ok := value.(string); ok && text == "" {
		return value, errors.New(warning)
	}
	return value, nil
}

func toYAML(value interface{}) string {
	encoded, err := yaml.Marshal(value)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(encoded), "\n")
}

func fromYAML(text string) map[string]interface{} {
	result := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(text), &result); err != nil {
		result["Error"] = err.Error()
	}
	return result
}

func fromYAMLArray(text string) []interface{} {
	var result []interface{}
	if err := yaml.Unmarshal([]byte(text), &result); err != nil {
		result = []interface{}{err.Error()}
	}
	return result
}

func toJSON(value interface{}) string {
	encoded, err := json.Marshal(value)
	if err != nil {
		return ""
	}
	return string(encoded)
}

func fromJSON(text string) map[string]interface{} {
	result := map[string]interface{}{}
	if err := json.Unmarshal([]byte(text), &result); err != nil {
		result["Error"] = err.Error()
	}
	return result
}

func fromJSONArray(text string) []interface{} {
	var result []interface{}
	if err := json.Unmarshal([]byte(text), &result); err != nil {
		result = []interface{}{err.Error()}
	}
	return result
}

// coalesce merges override into base with Helm's rules: maps merge key by key,
// any other value replaces, and an explicit null deletes the key.
func coalesce(override, base map[string]interface{}) map[string]interface{} {
	result := deepCopy(base)
	for key, value := range override {
		if value == nil {
			delete(result, key)
			continue
		}
		overrideMap, overrideIsMap := value.(map[string]interface{})
		baseMap, baseIsMap := result[key].(map[string]interface{})
		if overrideIsMap && baseIsMap {
			result[key] = coalesce(overrideMap, baseMap)
			continue
		}
		result[key] = deepCopyValue(value)
	}
	return result
}

func deepCopy(source map[string]interface{}) map[string]interface{} {
	copied := make(map[string]interface{}, len(source))
	for key, value := range source {
		copied[key] = deepCopyValue(value)
	}
	return copied
}

func deepCopyValue(value interface{}) interface{} {
	switch typed := value.(type) {
	case map[string]interface{}:
		return deepCopy(typed)
	case []interface{}:
		copied := make([]interface{}, len(typed))
		for i, item := range typed {
			copied[i] = deepCopyValue(item)
		}
		return copied
	default:
		return value
	}
}

func readYAMLMap(file string) (map[string]interface{}, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	result := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &result); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return result, nil
}

func readCluster(file string) ([]map[string]interface{}, error) {
	if file == "" {
		return nil, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var objects []map[string]interface{}
	if err := json.Unmarshal(data, &objects); err != nil {
		return nil, fmt.Errorf("%s: expected a JSON list of Kubernetes objects: %w", file, err)
	}
	return objects, nil
}

// readChartFiles returns the templates keyed by "<chart>/templates/<path>" (Helm's
// template names) and every other file for .Files.
func readChartFiles(chartDir, chartName string) (map[string]string, chartFiles, error) {
	templates := map[string]string{}
	files := chartFiles{}
	err := filepath.Walk(chartDir, func(file string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		relative, err := filepath.Rel(chartDir, file)
		if err != nil {
			return err
		}
		relative = filepath.ToSlash(relative)
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if strings.HasPrefix(relative, "templates/") {
			templates[chartName+"/"+relative] = string(data)
			return nil
		}
		files[relative] = data
		return nil
	})
	return templates, files, err
}

// chartFiles is .Files: the chart's non-template files.
type chartFiles map[string][]byte

func (f chartFiles) Get(name string) string      { return string(f[name]) }
func (f chartFiles) GetBytes(name string) []byte { return f[name] }

func (f chartFiles) Lines(name string) []string {
	text := strings.TrimSuffix(string(f[name]), "\n")
	if text == "" {
		return []string{}
	}
	return strings.Split(text, "\n")
}

// apiVersionSet is .Capabilities.APIVersions.
type apiVersionSet []string

func (s apiVersionSet) Has(version string) bool {
	for _, known := range s {
		if known == version {
			return true
		}
	}
	return false
}

// builtinAPIVersions lists the group versions a current cluster serves that the
// chart may ask about; CRD groups are added with -api-versions.
var builtinAPIVersions = []string{
	"v1", "apps/v1", "autoscaling/v2", "policy/v1", "rbac.authorization.k8s.io/v1",
	"apiregistration.k8s.io/v1", "discovery.k8s.io/v1", "events.k8s.io/v1",
	"networking.k8s.io/v1", "storage.k8s.io/v1", "batch/v1",
	"apps/v1/Deployment", "autoscaling/v2/HorizontalPodAutoscaler", "policy/v1/PodDisruptionBudget",
}

var kubeVersionPattern = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)`)

func capabilities(kubeVersion string, extra []string) map[string]interface{} {
	major, minor := "1", "31"
	if match := kubeVersionPattern.FindStringSubmatch(kubeVersion); match != nil {
		major, minor = match[1], match[2]
	}
	versions := append(apiVersionSet{}, builtinAPIVersions...)
	versions = append(versions, extra...)
	return map[string]interface{}{
		"KubeVersion": map[string]interface{}{
			"Version":    kubeVersion,
			"GitVersion": kubeVersion,
			"Major":      major,
			"Minor":      minor,
		},
		"APIVersions": versions,
	}
}

// chartObject maps Chart.yaml keys to the capitalised field names of Helm's .Chart.
func chartObject(meta map[string]interface{}) map[string]interface{} {
	object := map[string]interface{}{}
	for key, value := range meta {
		if key == "" {
			continue
		}
		object[strings.ToUpper(key[:1])+key[1:]] = value
	}
	return object
}

func withTemplate(top map[string]interface{}, name, chartName string) map[string]interface{} {
	data := make(map[string]interface{}, len(top)+1)
	for key, value := range top {
		data[key] = value
	}
	data["Template"] = map[string]interface{}{"Name": name, "BasePath": chartName + "/templates"}
	return data
}

var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// writeDocuments splits one rendered file into YAML documents and drops the empty
// ones, as Helm does before it sends manifests to the cluster.
func writeDocuments(out *bytes.Buffer, name, rendered string) {
	for _, document := range documentSeparator.Split(rendered, -1) {
		if isBlankDocument(document) {
			continue
		}
		fmt.Fprintf(out, "---\n# Source: %s\n%s\n", name, strings.Trim(document, "\n"))
	}
}

func isBlankDocument(document string) bool {
	for _, line := range strings.Split(document, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed != "" && !strings.HasPrefix(trimmed, "#") {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}
