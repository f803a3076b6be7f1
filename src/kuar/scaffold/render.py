"""Files of a scaffolded project, rendered from the templates in ``templates/`` and PROJECT.

Place in the pipeline: :mod:`kuar.scaffold.commands` asks for the files of one command
(:func:`init_files`, :func:`kind_files`, :func:`version_files`, :func:`webhook_files`) plus
the regenerated ones (:func:`generated_files`), then writes them through
:func:`kuar.scaffold.project.plan_writes`. Pure: templates in, text out.
"""

from __future__ import annotations

import re
from importlib import resources

from kuar.scaffold.names import KindNames
from kuar.scaffold.project import MARK, File, Owner, Project, Resource

_TOKEN = re.compile(r"\{\{(\w+)\}\}")


def render(template: str, values: dict[str, str]) -> str:
    """``templates/<template>`` with each ``{{name}}`` replaced (KeyError if one is missing)."""
    text = resources.files("kuar.scaffold").joinpath("templates", template).read_text()
    return _TOKEN.sub(lambda m: values[m.group(1)], text)


def project_values(p: Project) -> dict[str, str]:
    """What every template may use."""
    return {"project": p.project, "package": p.package, "domain": p.domain,
            "namespace": p.namespace, "kuar": p.kuar, "image": f"{p.domain}/{p.project}",
            "mark": MARK}


def kind_values(p: Project, r: Resource, version: str) -> dict[str, str]:
    """Names of one kind in one version, for the kind templates."""
    n = KindNames(r.group, f"{r.group}.{p.domain}", r.kind)
    namespaced = r.namespaced
    return {**project_values(p), "kind": r.kind, "snake": n.snake, "plural": n.plural,
            "group": n.full_group, "group_module": n.group_module, "version": version,
            "hub_version": r.hub, "scope": "Namespaced" if namespaced else "Cluster",
            "ns_param": ", namespace: str" if namespaced else "",
            "ns_arg": ", namespace=namespace" if namespaced else "",
            "ev_ns": ", namespace=namespace" if namespaced else ""}


def init_files(p: Project) -> list[File]:
    """What ``kuar init`` writes besides the regenerated files."""
    v = project_values(p)
    pkg = f"src/{p.package}"
    author = [
        ("pyproject.toml", "pyproject.toml.tmpl"), ("README.md", "README.md.tmpl"),
        ("Makefile", "Makefile.tmpl"), (".gitignore", "gitignore.tmpl"),
        (f"{pkg}/__init__.py", "package_init.py.tmpl"), (f"{pkg}/main.py", "main.py.tmpl"),
        ("tests/conftest.py", "conftest.py.tmpl"),
        ("deploy/default/kustomization.yaml", "deploy_default.yaml.tmpl"),
        ("deploy/manager/kustomization.yaml", "deploy_manager.yaml.tmpl"),
        ("deploy/manager/namespace.yaml", "namespace.yaml.tmpl"),
        ("deploy/manager/deployment.yaml", "deployment.yaml.tmpl"),
        ("deploy/manager/service.yaml", "service.yaml.tmpl"),
    ]
    files = [File(path, render(t, v), Owner.AUTHOR) for path, t in author]
    for sub, doc in (("api", "The kinds of this project, one module per kind and version."),
                     ("controllers", "One reconciler per kind."),
                     ("webhooks", "Admission webhooks, one module per kind.")):
        files.append(File(f"{pkg}/{sub}/__init__.py", f'"""{doc}"""\n', Owner.ONCE))
    return files


def _api_module(p: Project, r: Resource, version: str) -> str:
    n = KindNames(r.group, "", r.kind)
    return f"src/{p.package}/api/{n.group_module}/{version}"


def kind_files(p: Project, r: Resource) -> list[File]:
    """A new kind: its hub version's types, its controller and their test."""
    v = kind_values(p, r, r.hub)
    folder = _api_module(p, r, r.hub)
    files = [
        File(f"{folder.rsplit('/', 1)[0]}/__init__.py",
             f'"""The {v["group"]} API group."""\n', Owner.ONCE),
        File(f"{folder}/__init__.py", f'"""{v["group"]}/{r.hub}."""\n', Owner.ONCE),
        File(f"{folder}/{v['snake']}.py", render("types.py.tmpl", v), Owner.AUTHOR),
    ]
    if r.controller:
        files += [
            File(f"src/{p.package}/controllers/{v['snake']}.py",
                 render("controller.py.tmpl", v), Owner.AUTHOR),
            File(f"tests/test_{v['snake']}.py", render("test_controller.py.tmpl", v),
                 Owner.AUTHOR),
        ]
    else:
        files.append(File(f"tests/test_{v['snake']}.py", render("test_types.py.tmpl", v),
                          Owner.AUTHOR))
    return files


def version_files(p: Project, r: Resource, version: str) -> list[File]:
    """Another version of a kind: a spoke with its conversion, and the conversion's test."""
    v = kind_values(p, r, version)
    folder = _api_module(p, r, version)
    return [
        File(f"{folder}/__init__.py", f'"""{v["group"]}/{version}."""\n', Owner.ONCE),
        File(f"{folder}/{v['snake']}.py", render("spoke.py.tmpl", v), Owner.AUTHOR),
        File(f"tests/test_{v['snake']}_{version}_conversion.py",
             render("test_conversion.py.tmpl", v), Owner.AUTHOR),
    ]


def webhook_files(p: Project, r: Resource, version: str, *, defaulting: bool,
                  validation: bool) -> list[File]:
    """Admission webhooks of a kind: the handlers and their tests through the API server."""
    v = kind_values(p, r, version)
    imports = ["Admission"] if defaulting or validation else []
    blocks, constants, tests, test_imports = [], [], [], []
    if defaulting:
        imports.append("MutatingWebhook")
        constants.append("DEFAULT_SIZE = 1")
        blocks.append(render("webhook_defaulting.tmpl", v))
        tests.append(render("test_webhook_defaulting.tmpl", v))
        test_imports.append("DEFAULT_SIZE")
    if validation:
        imports += ["FieldErrors", "ValidatingWebhook", "Validator"]
        constants.append("MAX_SIZE = 10")
        blocks.append(render("webhook_validation.tmpl", v))
        tests.append(render("test_webhook_validation.tmpl", v))
        test_imports.append("MAX_SIZE")
    handlers = render("webhooks.py.tmpl", {
        **v, "imports": ", ".join(sorted(imports)), "constants": "\n".join(constants),
        "blocks": "\n\n".join(blocks)})
    test = render("test_webhooks.py.tmpl", {**v, "webhook_tests": "\n\n".join(tests)})
    test = test.replace("import DEFAULT_SIZE, MAX_SIZE", f"import {', '.join(test_imports)}")
    if not validation:
        test = test.replace("import pytest\n\n", "").replace("Api, Client, Invalid",
                                                              "Api, Client")
        test = test.replace(f"import {v['kind']}, {v['kind']}Spec", f"import {v['kind']}")
    handlers = re.sub(r"\n{4,}", "\n\n\n", handlers)
    return [File(f"src/{p.package}/webhooks/{v['snake']}.py", handlers, Owner.AUTHOR),
            File(f"tests/test_{v['snake']}_webhooks.py", test, Owner.AUTHOR)]


def _wiring(p: Project) -> str:
    imports: list[str] = []
    controllers, admission, converters, crds = [], [], [], []
    validating: set[str] = set()
    mutating: set[str] = set()
    for r in p.resources:
        n = KindNames(r.group, f"{r.group}.{p.domain}", r.kind)
        if r.controller:
            imports.append(f"from {p.package}.controllers import {n.snake} as "
                           f"{n.snake}_controller")
            controllers.append(f"{n.snake}_controller.build")
        if r.defaulting or r.validation:
            imports.append(f"from {p.package}.webhooks import {n.snake} as {n.snake}_webhooks")
        if r.defaulting:
            admission.append(f"{n.snake}_webhooks.defaulting")
            mutating.add(f"{p.project}-mutating-webhook-configuration")
        if r.validation:
            admission.append(f"{n.snake}_webhooks.validation")
            validating.add(f"{p.project}-validating-webhook-configuration")
        if len(r.versions) > 1:
            alias = {ver: f"{n.group_module}_{ver}_{n.snake}" for ver in r.versions}
            for ver in r.versions:
                imports.append(f"from {p.package}.api.{n.group_module}.{ver} import "
                               f"{n.snake} as {alias[ver]}")
            spokes = "".join(
                f"\n        Spoke(version={q(ver)}, codec=Codec.of({alias[ver]}.{r.kind}),"
                f"\n              to_hub={alias[ver]}.to_hub, from_hub={alias[ver]}.from_hub),"
                for ver in r.versions[1:])
            converters.append(
                f"\n    HubAndSpoke(group={q(n.full_group)}, kind={q(r.kind)}, "
                f"plural={q(n.plural)}, hub_version={q(r.hub)},\n"
                f"                hub=Codec.of({alias[r.hub]}.{r.kind}),"
                f" spokes=[{spokes}\n    ]),\n")
            crds.append(q(n.crd))
    names = ["CaBundleInjector", "CertificateManager", "ConversionWebhook", "MutatingWebhook",
             "SelfSignedSource", "ServiceTarget", "UrlTarget", "ValidatingWebhook",
             "WebhookServer", "WebhookServerSettings", "apply_configurations",
             "conversion_stanza", "delete_configurations", "webhook_configurations"]
    if converters:
        names += ["Codec", "HubAndSpoke", "Spoke"]
    webhook_imports = "".join(f"    {name},\n" for name in sorted(names, key=_isort_key))

    def items(values: list[str]) -> str:
        return "".join(f"\n    {value}," for value in values) + ("\n" if values else "")

    return render("wiring.py.tmpl", {
        **project_values(p), "imports": "".join(f"{line}\n" for line in sorted(imports)) + "\n",
        "webhook_imports": webhook_imports, "controllers": items(controllers),
        "admission": items(admission), "converters": "".join(converters),
        "has_webhooks": str(p.webhooks), "converted_crds": ", ".join(crds),
        "validating": ", ".join(q(x) for x in sorted(validating)),
        "mutating": ", ".join(q(x) for x in sorted(mutating))})


def q(text: str) -> str:
    """A Python string literal with double quotes (the generated code's style)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's isort order inside one import: CONSTANTS, Classes, functions
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def _rbac(p: Project) -> str:
    imports, rules = [], []
    for r in p.resources:
        n = KindNames(r.group, f"{r.group}.{p.domain}", r.kind)
        if r.controller:
            imports.append(f"from {p.package}.controllers import {n.snake}")
            rules.append(f"*{n.snake}.RULES")
    webhook_rules = ""
    if p.webhooks:
        crds = tuple(KindNames(r.group, f"{r.group}.{p.domain}", r.kind).crd
                     for r in p.resources if len(r.versions) > 1)
        configs = [("validatingwebhookconfigurations",
                    f"{p.project}-validating-webhook-configuration",
                    any(r.validation for r in p.resources)),
                   ("mutatingwebhookconfigurations", f"{p.project}-mutating-webhook-configuration",
                    any(r.defaulting for r in p.resources))]
        lines = [
            f"    PolicyRule(group=\"admissionregistration.k8s.io\", resources=({q(res)},),\n"
            f"               verbs=(\"get\", \"update\"),\n"
            f"               resource_names=({q(name)},),\n"
            f"               why=\"the webhooks' CA bundle\"),\n"
            for res, name, used in configs if used]
        if crds:
            names = "".join(q(c) + ", " for c in crds).rstrip(" ")
            lines.append(
                f"    PolicyRule(group=\"apiextensions.k8s.io\", "
                f"resources=(\"customresourcedefinitions\",),\n"
                f"               verbs=(\"get\", \"update\"),\n"
                f"               resource_names=({names}),\n"
                f"               why=\"the conversion webhook's CA bundle\"),\n")
        webhook_rules = "".join(lines)
        rules.append("*WEBHOOK_RULES")
    body = [f"# {MARK} (`kuar create`) from PROJECT; DO NOT EDIT.",
            f'"""What the {p.project} manager may do: `kuar generate rbac {p.package}.rbac` '
            "writes deploy/rbac/.",
            "",
            "Regenerated by each `kuar create` command from the RULES of each controller "
            "(yours) and",
            'what the manager and its webhooks need."""', "",
            "from __future__ import annotations", "",
            "from kuar.resources.rbac import PolicyRule, RbacRules", "",
            *sorted(imports), *([""] if imports else []), "",
            "LEADER_RULES = (",
            '    PolicyRule(group="coordination.k8s.io", resources=("leases",),',
            '               verbs=("create", "get", "list", "watch", "update"),',
            '               why="leader election (--leader-elect)"),',
            ")", ""]
    if webhook_rules:
        body += ["WEBHOOK_RULES = (", webhook_rules.rstrip("\n"), ")", ""]
    rule_list = "".join(f"{x}, " for x in rules)
    body += [
        "MANAGER = RbacRules(",
        f"    name=\"{p.project}-manager\", namespace=\"{p.namespace}\",",
        f"    rules=({rule_list.rstrip(', ')}{',' if len(rules) == 1 else ''}),"
        if rules else "    rules=(),",
        "    namespaced_rules=LEADER_RULES,",
        ")", ""]
    text = "\n".join(body)
    return text.replace("\n\n\nLEADER", "\n\nLEADER")


def _kustomization(comment: str, files: list[str]) -> str:
    listed = "resources:\n" + "".join(f"- {f}\n" for f in files) if files else "resources: []\n"
    return (f"# {MARK} (`kuar create`); DO NOT EDIT. {comment}\n"
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" + listed)


def generated_files(p: Project) -> list[File]:
    """The files every command rewrites from PROJECT."""
    crds = sorted(f"{r.group}.{p.domain}_{KindNames(r.group, '', r.kind).plural}.yaml"
                  for r in p.resources)
    hooks = []
    if any(r.defaulting for r in p.resources):
        hooks.append(f"{p.project}-mutating-webhook-configuration.yaml")
    if any(r.validation for r in p.resources):
        hooks.append(f"{p.project}-validating-webhook-configuration.yaml")
    pkg = f"src/{p.package}"
    g = Owner.GENERATED
    return [
        File("PROJECT", p.dump(), g),
        File(f"{pkg}/wiring.py", _wiring(p), g),
        File(f"{pkg}/rbac.py", _rbac(p), g),
        File("deploy/crds/kustomization.yaml",
             _kustomization("`make generate` writes the CRDs.", crds), g),
        File("deploy/rbac/kustomization.yaml",
             _kustomization("`make generate` writes the RBAC.",
                            [f"{p.project}-manager.rbac.yaml"]), g),
        File("deploy/webhooks/kustomization.yaml",
             _kustomization("`make generate` writes the configurations.", hooks), g),
    ]
