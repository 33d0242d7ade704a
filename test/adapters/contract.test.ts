import { adapterContract } from '../contracts/adapter.contract.js';
import { slackDriver } from './slack/driver.js';
import { teamsDriver } from './teams/driver.js';

adapterContract('slack', slackDriver);
adapterContract('teams', teamsDriver);
