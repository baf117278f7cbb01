-- Argo CD health for machinelearning.seldon.io/v1 SeldonDeployment (Argo CD has none built in).
-- status.state: Available -> Healthy, Failed -> Degraded, anything else (Creating, none yet)
-- -> Progressing. The operator can report Available while a replica is still missing, so an
-- Available deployment whose deploymentStatus shows fewer available than desired replicas is
-- still Progressing.
local hs = {}
if obj.status == nil or obj.status.state == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Seldon operator to report a state"
  return hs
end
local state = obj.status.state
if state == "Failed" then
  hs.status = "Degraded"
  hs.message = obj.status.description or "SeldonDeployment failed"
  return hs
end
if state == "Available" then
  if obj.status.deploymentStatus ~= nil then
    for name, ds in pairs(obj.status.deploymentStatus) do
      local want = ds.replicas or 0
      local have = ds.availableReplicas or 0
      if have < want then
        hs.status = "Progressing"
        hs.message = name .. ": " .. have .. "/" .. want .. " replicas available"
        return hs
      end
    end
  end
  hs.status = "Healthy"
  hs.message = "All predictors available"
  return hs
end
hs.status = "Progressing"
hs.message = "SeldonDeployment is " .. tostring(state)
return hs
