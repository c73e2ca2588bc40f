/**
 * The plugins of jupyter_mlk's JupyterLab panel: the model (with its event
 * subscription and settings), the sidebar, the commands, the sweeps, the
 * notebook servers and the deployed models.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';

import { addCommands, ICommandSettings, notifyError } from './commands';
import {
  buildDeployRequest,
  DeploymentsModel,
  IDeployForm,
  modelRef,
  suggestName
} from './deployments';
import { followNotebooks } from './follow';
import { MlkModel } from './model';
import { MlkApi } from './request';
import { ServersModel } from './servers';
import { addSweepCommands } from './sweepCommands';
import { SweepsModel } from './sweeps';
import {
  CommandIDs,
  ILaunchEvent,
  IMlkModel,
  IMlkSidebar,
  IRunStateEvent,
  ISweepStateEvent,
  LAUNCH_EVENT,
  RUN_STATE_EVENT,
  SETTINGS_ID,
  SWEEP_STATE_EVENT
} from './tokens';
import { DeployDialogBody } from './widgets/DeployDialogBody';
import {
  DeploymentsSection,
  MlkSidebar,
  serversSection,
  sweepsSection
} from './widgets/MlkSidebar';

/** The i18n domain of the panel's strings. */
const DOMAIN = 'jupyter_mlk';

/** The run history and graph state, kept fresh by the server's events. */
const modelPlugin: JupyterFrontEndPlugin<IMlkModel> = {
  id: SETTINGS_ID,
  description: 'The jupyter_mlk model: graph, runs, live run states.',
  autoStart: true,
  provides: IMlkModel,
  optional: [ISettingRegistry],
  activate: (app: JupyterFrontEnd, registry: ISettingRegistry | null) => {
    const model = new MlkModel(new MlkApi(app.serviceManager.serverSettings));
    app.serviceManager.events.stream.connect((_, event) => {
      if (event.schema_id === RUN_STATE_EVENT) {
        model.handleRunEvent(event as unknown as IRunStateEvent);
      }
    });
    if (registry) {
      void registry.load(SETTINGS_ID).then(settings => {
        const apply = () =>
          model.configure({
            runsLimit: settings.get('runsLimit').composite as number,
            pollInterval: settings.get('pollInterval').composite as number,
            refreshDelay: settings.get('refreshDelay').composite as number
          });
        apply();
        settings.changed.connect(apply);
      });
    }
    void app.restored.then(() => model.refreshRuns()).catch(() => undefined);
    return model;
  }
};

/** The left sidebar following the current notebook. */
const panelPlugin: JupyterFrontEndPlugin<IMlkSidebar> = {
  id: 'jupyter-mlk:panel',
  description: 'The jupyter_mlk sidebar: steps, cell tags, runs.',
  autoStart: true,
  provides: IMlkSidebar,
  requires: [IMlkModel, INotebookTracker],
  optional: [ITranslator, ILayoutRestorer, ILabShell, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    model: IMlkModel,
    tracker: INotebookTracker,
    translator: ITranslator | null,
    restorer: ILayoutRestorer | null,
    labShell: ILabShell | null,
    palette: ICommandPalette | null
  ) => {
    const trans = (translator ?? nullTranslator).load(DOMAIN);
    const sidebar = new MlkSidebar({
      model,
      trans,
      commands: app.commands,
      translator: translator ?? nullTranslator
    });
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, sidebar.id);
    followNotebooks(tracker, model);

    app.commands.addCommand(CommandIDs.openPanel, {
      label: trans.__('Open Pipeline Panel'),
      execute: () => app.shell.activateById(sidebar.id)
    });
    palette?.addItem({
      command: CommandIDs.openPanel,
      category: trans.__('Pipeline')
    });
    return sidebar;
  }
};

/** Run, compile, refresh and the run views, in the command palette. */
const commandsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlk:commands',
  description: 'The jupyter_mlk commands and run views.',
  autoStart: true,
  requires: [IMlkModel],
  optional: [ITranslator, ICommandPalette, ISettingRegistry, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    model: IMlkModel,
    translator: ITranslator | null,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null
  ) => {
    const trans = (translator ?? nullTranslator).load(DOMAIN);
    let current: ICommandSettings = {
      openRunView: true,
      compileSave: true,
      compileImage: ''
    };
    if (registry) {
      void registry
        .load(SETTINGS_ID)
        .then(settings => {
          const read = () => {
            current = {
              openRunView: settings.get('openRunView').composite as boolean,
              compileSave: settings.get('compileSave').composite as boolean,
              compileImage: settings.get('compileImage').composite as string
            };
          };
          read();
          settings.changed.connect(read);
        })
        .catch(notifyError);
    }
    const runViews = addCommands(app, model, trans, () => current);
    void restorer?.restore(runViews, {
      command: CommandIDs.openRun,
      args: widget => ({ runId: widget.content.runId }),
      name: widget => widget.content.runId
    });
    const category = trans.__('Pipeline');
    for (const command of [
      CommandIDs.runPipeline,
      CommandIDs.compilePipeline,
      CommandIDs.refreshGraph
    ]) {
      palette?.addItem({ command, category });
    }
  }
};

/** Reads the fallback poll interval from the settings, now and on change. */
function followPollInterval(
  registry: ISettingRegistry | null,
  apply: (seconds: number) => void
): void {
  void registry?.load(SETTINGS_ID).then(settings => {
    const read = () => apply(settings.get('pollInterval').composite as number);
    read();
    settings.changed.connect(read);
  });
}

/** Parameter sweeps: the form, the sweep views, the Sweeps section. */
const sweepsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlk:sweeps',
  description: 'Parameter sweeps of the current notebook, with live trials.',
  autoStart: true,
  requires: [IMlkModel, IMlkSidebar],
  optional: [
    IRenderMimeRegistry,
    ITranslator,
    ICommandPalette,
    ISettingRegistry,
    ILayoutRestorer
  ],
  activate: (
    app: JupyterFrontEnd,
    model: IMlkModel,
    sidebar: IMlkSidebar,
    rendermime: IRenderMimeRegistry | null,
    translator: ITranslator | null,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null
  ) => {
    const trans = (translator ?? nullTranslator).load(DOMAIN);
    const sweeps = new SweepsModel(model.api);
    followPollInterval(registry, pollInterval =>
      sweeps.configure({ pollInterval })
    );
    app.serviceManager.events.stream.connect((_, event) => {
      if (event.schema_id === SWEEP_STATE_EVENT) {
        sweeps.handleSweepEvent(event as unknown as ISweepStateEvent);
      }
    });
    const views = addSweepCommands(app, model, sweeps, rendermime, trans);
    void restorer?.restore(views, {
      command: CommandIDs.openSweep,
      args: widget => ({ sweepId: widget.content.sweepId }),
      name: widget => widget.content.sweepId
    });
    sidebar.addSection(
      sweepsSection({
        sweeps,
        model,
        trans,
        onNew: () => void app.commands.execute(CommandIDs.newSweep),
        onOpen: sweepId =>
          void app.commands.execute(CommandIDs.openSweep, { sweepId })
      }),
      3
    );
    palette?.addItem({
      command: CommandIDs.newSweep,
      category: trans.__('Pipeline')
    });
    void app.restored.then(() => sweeps.refreshSweeps()).catch(() => undefined);
  }
};

/** The launcher's notebook servers: list, launch with progress, stop. */
const serversPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlk:servers',
  description: 'Launch, follow and stop notebook servers (local or pods).',
  autoStart: true,
  requires: [IMlkModel, IMlkSidebar],
  optional: [ITranslator, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    model: IMlkModel,
    sidebar: IMlkSidebar,
    translator: ITranslator | null,
    registry: ISettingRegistry | null
  ) => {
    const trans = (translator ?? nullTranslator).load(DOMAIN);
    const servers = new ServersModel(model.api);
    followPollInterval(registry, pollInterval =>
      servers.configure({ pollInterval })
    );
    app.serviceManager.events.stream.connect((_, event) => {
      if (event.schema_id === LAUNCH_EVENT) {
        servers.handleLaunchEvent(event as unknown as ILaunchEvent);
      }
    });
    app.commands.addCommand(CommandIDs.refreshServers, {
      label: trans.__('Refresh Notebook Servers'),
      execute: () => servers.refresh().catch(notifyError)
    });
    sidebar.addSection(serversSection({ servers, trans }), 2);
    void app.restored.then(() => servers.refresh()).catch(() => undefined);
  }
};

/**
 * Deployed models: "Deploy…" on a run's values (the run view's buttons call
 * the deploy command) and the Deployments section.
 */
const deploymentsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlk:deployments',
  description: 'Deploy run outputs as models; canary, promote, try them.',
  autoStart: true,
  requires: [IMlkModel, IMlkSidebar],
  optional: [ITranslator, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    model: IMlkModel,
    sidebar: IMlkSidebar,
    translator: ITranslator | null,
    palette: ICommandPalette | null
  ) => {
    const trans = (translator ?? nullTranslator).load(DOMAIN);
    const deployments = new DeploymentsModel(model.api);
    const act = (call: Promise<unknown>) =>
      call.catch(error => {
        notifyError(error);
        // The list may have changed under a refused call.
        return deployments.refresh().catch(() => undefined);
      });

    app.commands.addCommand(CommandIDs.deployModel, {
      label: trans.__('Deploy Model…'),
      caption: trans.__('Serve a value of a run as a model'),
      execute: async args => {
        const runId = String(args.runId ?? '');
        const step = String(args.step ?? '');
        const variable = String(args.variable ?? '');
        if (!runId || !step || !variable) {
          return;
        }
        const ref = modelRef(runId, step, variable);
        const notebook = model.getRun(runId)?.notebook ?? variable;
        await deployWithDialog(deployments, trans, ref, {
          name: suggestName(notebook.split('/').pop() ?? variable),
          canaryPercent: ''
        });
      }
    });
    app.commands.addCommand(CommandIDs.refreshDeployments, {
      label: trans.__('Refresh Deployments'),
      execute: () => deployments.refresh().catch(notifyError)
    });
    palette?.addItem({
      command: CommandIDs.refreshDeployments,
      category: trans.__('Pipeline')
    });

    sidebar.addSection(
      new DeploymentsSection({
        deployments,
        trans,
        onRefresh: () =>
          void app.commands.execute(CommandIDs.refreshDeployments),
        onUndeploy: name =>
          void confirm(
            trans.__('Undeploy %1?', name),
            trans.__(
              'Every version of %1 stops serving; its URL answers 404.',
              name
            ),
            trans.__('Undeploy')
          ).then(yes => yes && act(deployments.undeploy(name))),
        onPromote: name => void act(deployments.promote(name)),
        onRollback: name => void act(deployments.rollback(name)),
        onTraffic: async (name, percent) => {
          await act(deployments.setTraffic(name, percent));
        },
        onPredict: (name, data) =>
          deployments.predict(name, data).catch(error => {
            notifyError(error);
            return null;
          })
      }),
      3
    );
  }
};

/**
 * Asks for the deployment's name and canary share, then deploys; asks again
 * (with the problem shown) while the form is not valid. Refusals from the
 * server are notifications with its message.
 */
async function deployWithDialog(
  deployments: DeploymentsModel,
  trans: TranslationBundle,
  ref: string,
  initial: IDeployForm
): Promise<void> {
  let form = initial;
  for (;;) {
    const result = await showDialog({
      title: trans.__('Deploy %1', ref.split(':').pop() ?? ref),
      body: new DeployDialogBody(ref, form, trans),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: trans.__('Deploy') })
      ],
      focusNodeSelector: 'input'
    });
    if (!result.button.accept || !result.value) {
      return;
    }
    form = result.value;
    const { request, errors } = buildDeployRequest(ref, form);
    if (!request) {
      notifyError(new Error(errors.join(' ')));
      continue;
    }
    const pending = Notification.emit(
      trans.__('Deploying %1 as %2…', ref, request.name),
      'in-progress',
      { autoClose: false }
    );
    try {
      const deployment = await deployments.deploy(request);
      Notification.update({
        id: pending,
        message: trans.__(
          'Deployed %1: %2',
          deployment.name,
          deployment.endpoints?.v1 ?? deployment.status
        ),
        type: 'success',
        autoClose: 5000
      });
    } catch (error) {
      Notification.dismiss(pending);
      notifyError(error);
    }
    return;
  }
}

async function confirm(
  title: string,
  body: string,
  label: string
): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

export default [
  modelPlugin,
  panelPlugin,
  commandsPlugin,
  sweepsPlugin,
  serversPlugin,
  deploymentsPlugin
];
