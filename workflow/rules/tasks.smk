# Task datasets: species fragments (from held-out CDS), per-base TF binding, and user
# sequence classification/regression tasks, and the tasks of benchmark suites.


rule species_fragments:
    input:
        **PLAN.splits_input(PLAN.species_samples),
    output:
        data="results/tasks/species_fragments/data.tsv",
        summary=report(
            "results/tasks/species_fragments/summary.tsv",
            caption="../report/task_summary.rst",
            category="2. Tasks",
            labels={"task": "species_fragments"},
        ),
        meta="results/tasks/species_fragments/task.json",
    log:
        "results/logs/tasks/species_fragments.log",
    benchmark:
        "results/benchmarks/tasks/species_fragments.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        samples=lambda wc: [
            {"sample": s, "species": PLAN.samples[s].species}
            for s in PLAN.species_samples
        ],
        files=PLAN.split_files(PLAN.species_samples, ["validation", "test"]),
        cfg=config["tasks"]["species_fragments"],
    script:
        "../scripts/species_fragments.py"


rule tf_binding_task:
    input:
        unpack(PLAN.tf_binding_inputs),
    output:
        data="results/tasks/tf_binding/data.tsv",
        summary=report(
            "results/tasks/tf_binding/summary.tsv",
            caption="../report/task_summary.rst",
            category="2. Tasks",
            labels={"task": "tf_binding"},
        ),
        meta="results/tasks/tf_binding/task.json",
    log:
        "results/logs/tasks/tf_binding.log",
    benchmark:
        "results/benchmarks/tasks/tf_binding.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        cfg=config["tasks"]["tf_binding"],
    script:
        "../scripts/tf_binding_task.py"


rule sequence_task:
    input:
        unpack(PLAN.sequence_task_inputs),
    output:
        data="results/tasks/{task}/data.tsv",
        summary=report(
            "results/tasks/{task}/summary.tsv",
            caption="../report/task_summary.rst",
            category="2. Tasks",
            labels={"task": "{task}"},
        ),
        meta="results/tasks/{task}/task.json",
    log:
        "results/logs/tasks/{task}.log",
    benchmark:
        "results/benchmarks/tasks/{task}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        cfg=lambda wc: config["tasks"]["sequence_tasks"][wc.task],
        generated=lambda wc: PLAN.generated_task_params(wc.task),
    script:
        "../scripts/sequence_task.py"


rule suite_task:
    input:
        unpack(PLAN.suite_task_inputs),
    output:
        data="results/tasks/{stask}/data.tsv",
        summary=report(
            "results/tasks/{stask}/summary.tsv",
            caption="../report/task_summary.rst",
            category="2. Tasks",
            labels={"task": "{stask}"},
        ),
        meta="results/tasks/{stask}/task.json",
    log:
        "results/logs/tasks/{stask}.log",
    benchmark:
        "results/benchmarks/tasks/{stask}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        spec=lambda wc: PLAN.suite_task_params(wc.stask),
    script:
        "../scripts/suite_task.py"


# The leakage audit of a suite: each test item searched against the pretraining corpus of
# every model with a known corpus and against the suite's own train split (dnalm.tasks.audit).
rule suite_audit:
    input:
        unpack(PLAN.suite_audit_inputs),
    output:
        audit=report(
            "results/suites/{suite}/audit.tsv",
            caption="../report/suite_audit.rst",
            category="4. Fine-tuning",
            subcategory="suite {suite}",
            labels={"suite": "{suite}", "table": "leakage audit"},
        ),
        per_item="results/suites/{suite}/audit_items.tsv",
    log:
        "results/logs/suites/{suite}/audit.log",
    benchmark:
        "results/benchmarks/suites/{suite}/audit.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 1
    params:
        spec=lambda wc: PLAN.suite_audit_params(wc.suite),
    script:
        "../scripts/suite_audit.py"
