/**
 * The palette commands: run and compile the current notebook's pipeline,
 * refresh its graph, open and cancel runs.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  MainAreaWidget,
  Notification,
  showDialog,
  WidgetTracker
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon, runIcon, downloadIcon } from '@jupyterlab/ui-components';

import { shortId } from './format';
import { messageOf } from './model';
import { CommandIDs, IMlkModel, JSONValue } from './tokens';
import { RunDialogBody } from './widgets/RunDialogBody';
import { RunViewWidget } from './widgets/RunViewWidget';

/** Settings the commands read at the time they run. */
export interface ICommandSettings {
  openRunView: boolean;
  compileSave: boolean;
  compileImage: string;
}

/** Shows an error as a JupyterLab notification, the server's message as is. */
export function notifyError(error: unknown): void {
  Notification.error(messageOf(error), { autoClose: 10000 });
}

/** Adds the commands; returns the tracker of the run views (for restoring). */
export function addCommands(
  app: JupyterFrontEnd,
  model: IMlkModel,
  trans: TranslationBundle,
  settings: () => ICommandSettings
): WidgetTracker<MainAreaWidget<RunViewWidget>> {
  const { commands, shell } = app;
  const runViews = new WidgetTracker<MainAreaWidget<RunViewWidget>>({
    namespace: 'mlk-run'
  });
  const hasNotebook = () => model.notebook !== null;
  model.notebookChanged.connect(() => {
    commands.notifyCommandChanged(CommandIDs.runPipeline);
    commands.notifyCommandChanged(CommandIDs.compilePipeline);
  });

  commands.addCommand(CommandIDs.runPipeline, {
    label: trans.__('Run Pipeline'),
    caption: trans.__('Run the notebook as a pipeline on this machine'),
    icon: args => (args.toolbar ? runIcon : undefined),
    isEnabled: hasNotebook,
    execute: async args => {
      try {
        if (typeof args.path === 'string') {
          await showNotebook(app, model, args.path);
        }
        const initial = (args.params ?? {}) as { [name: string]: string };
        const run = await runWithDialog(model, trans, initial);
        if (run && settings().openRunView) {
          await commands.execute(CommandIDs.openRun, { runId: run });
        }
      } catch (error) {
        notifyError(error);
      }
    }
  });

  commands.addCommand(CommandIDs.compilePipeline, {
    label: trans.__('Compile Pipeline for Kubeflow'),
    caption: trans.__('Write the Kubeflow Pipelines YAML of the notebook'),
    icon: args => (args.toolbar ? downloadIcon : undefined),
    isEnabled: hasNotebook,
    execute: async () => {
      try {
        await compile(app, model, trans, settings());
      } catch (error) {
        notifyError(error);
      }
    }
  });

  commands.addCommand(CommandIDs.refreshGraph, {
    label: trans.__('Refresh Pipeline Graph'),
    caption: trans.__('Analyse the notebook again and reload the runs'),
    icon: args => (args.toolbar ? refreshIcon : undefined),
    execute: async () => {
      await Promise.all([
        model.refreshGraph(),
        model.refreshRuns().catch(notifyError)
      ]);
    }
  });

  commands.addCommand(CommandIDs.openRun, {
    label: args =>
      args.runId
        ? trans.__('Open Run %1', shortId(String(args.runId)))
        : trans.__('Open Run'),
    execute: args => {
      const runId = String(args.runId ?? '');
      if (!runId) {
        return;
      }
      const open = runViews.find(w => w.content.runId === runId);
      if (open) {
        shell.activateById(open.id);
        return open;
      }
      const content = new RunViewWidget({
        model,
        api: model.api,
        runId,
        trans,
        onOpenNotebook: (id, step) =>
          void openStepNotebook(app, model, trans, id, step).catch(notifyError),
        onCancel: id =>
          void commands.execute(CommandIDs.cancelRun, { runId: id }),
        onError: notifyError,
        // The deployments plugin adds the command; without it, no buttons.
        onDeploy: commands.hasCommand(CommandIDs.deployModel)
          ? (id, step, variable) =>
              void commands.execute(CommandIDs.deployModel, {
                runId: id,
                step,
                variable
              })
          : undefined
      });
      const widget = new MainAreaWidget({ content });
      widget.id = content.id;
      widget.title.label = content.title.label;
      widget.title.icon = content.title.icon;
      widget.title.closable = true;
      content.title.changed.connect(() => {
        widget.title.label = content.title.label;
        widget.title.caption = content.title.caption;
      });
      const sibling = runViews.currentWidget;
      const notebook = app.shell.currentWidget;
      shell.add(
        widget,
        'main',
        sibling && sibling.isAttached
          ? { mode: 'tab-after', ref: sibling.id }
          : { mode: 'split-right', ref: notebook?.id ?? null }
      );
      void runViews.add(widget);
      shell.activateById(widget.id);
      return widget;
    }
  });

  commands.addCommand(CommandIDs.cancelRun, {
    label: trans.__('Cancel Run'),
    execute: async args => {
      try {
        await model.cancelRun(String(args.runId));
      } catch (error) {
        notifyError(error);
      }
    }
  });
  return runViews;
}

/** Asks for the parameters, then starts the run; the run id, or null. */
async function runWithDialog(
  model: IMlkModel,
  trans: TranslationBundle,
  initial: { [name: string]: string } = {}
): Promise<string | null> {
  await model.refreshGraph();
  const graph = model.graph;
  if (!graph) {
    throw new Error(model.graphError ?? trans.__('The notebook has no graph.'));
  }
  const body = new RunDialogBody(graph.parameters, trans, initial);
  const result = await showDialog({
    title: trans.__('Run %1', PathExt.basename(model.notebook!.path)),
    body,
    buttons: [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.okButton({ label: trans.__('Run') })
    ],
    focusNodeSelector: 'input, select'
  });
  if (!result.button.accept || !result.value) {
    return null;
  }
  const run = await model.startRun(result.value.params, {
    noCache: result.value.noCache
  });
  Notification.info(trans.__('Run %1 started.', shortId(run.id)), {
    autoClose: 3000
  });
  return run.id;
}

/**
 * Opens the notebook at `path` and waits until the panel follows it, so the
 * run form is the form of that notebook.
 */
export async function showNotebook(
  app: JupyterFrontEnd,
  model: IMlkModel,
  path: string
): Promise<void> {
  if (model.notebook?.path === path) {
    return;
  }
  const followed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      model.notebookChanged.disconnect(check);
      reject(new Error(`Could not open the notebook ${path}.`));
    }, 20000);
    const check = () => {
      if (model.notebook?.path === path) {
        clearTimeout(timer);
        model.notebookChanged.disconnect(check);
        resolve();
      }
    };
    model.notebookChanged.connect(check);
  });
  await app.commands.execute('docmanager:open', { path });
  await followed;
}

async function compile(
  app: JupyterFrontEnd,
  model: IMlkModel,
  trans: TranslationBundle,
  settings: ICommandSettings
): Promise<void> {
  const notebook = model.notebook;
  if (!notebook) {
    return;
  }
  if (notebook.isDirty) {
    await notebook.save();
  }
  const result = await model.api.compile(notebook.path, {
    save: settings.compileSave,
    image: settings.compileImage
  });
  const fileName =
    PathExt.basename(notebook.path).replace(/\.ipynb$/, '') + '.yaml';
  const download = () => downloadText(result.yaml, fileName);
  if (result.saved_to) {
    const saved = result.saved_to;
    Notification.success(trans.__('Saved the Kubeflow pipeline to %1', saved), {
      autoClose: 8000,
      actions: [
        {
          label: trans.__('Open'),
          callback: () =>
            void app.commands.execute('docmanager:open', { path: saved })
        },
        { label: trans.__('Download'), callback: download }
      ]
    });
  } else {
    download();
  }
}

/**
 * Opens a step's executed notebook: saved next to the run's notebook as
 * `NAME.STEP.RUN.ipynb` the first time, then opened from there.
 */
async function openStepNotebook(
  app: JupyterFrontEnd,
  model: IMlkModel,
  trans: TranslationBundle,
  runId: string,
  step: string
): Promise<void> {
  const run = model.getRun(runId);
  const source = run?.notebook ?? '';
  const stem = PathExt.basename(source).replace(/\.ipynb$/, '') || 'run';
  const path = PathExt.join(
    PathExt.dirname(source),
    `${stem}.${step}.${shortId(runId)}.ipynb`
  );
  const contents = app.serviceManager.contents;
  const exists = await contents.get(path, { content: false }).then(
    () => true,
    () => false
  );
  if (!exists) {
    const notebook: JSONValue = await model.api.getStepNotebook(runId, step);
    await contents.save(path, {
      type: 'notebook',
      format: 'json',
      content: notebook
    });
    Notification.info(
      trans.__('Saved the output of step %1 as %2', step, path),
      {
        autoClose: 5000
      }
    );
  }
  await app.commands.execute('docmanager:open', { path });
}

function downloadText(text: string, fileName: string): void {
  const url = URL.createObjectURL(
    new Blob([text], { type: 'application/yaml' })
  );
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
